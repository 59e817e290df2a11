//! A fake `yt-dlp` for end-to-end tests: a POSIX shell script in a temp dir that answers
//! listings (`-J`) from the reference fixtures and detail runs (`-j URL…`) with the full
//! video fixture re-labelled with each requested id. It records every run's arguments in
//! `args.log`, and the first detail run can sleep (to be killed mid-task).
//!
//! The channel of `tests/fixtures/channel_tabs.json` (`@TabsDemo`) is served as yt-dlp
//! serves a real one: its `/videos`, `/shorts` and `/streams` tabs (Shorts with `/shorts/`
//! URLs and no duration), its `UU…` playlist, its page with `-I 0` (the channel id, no
//! entries), and a details run per video with `media_type` and `live_status` set. The Data
//! API stand-in serves the same channel, so tests can compare the two backends.
//!
//! Shared by `prismq-cli`'s tests (included by path) and the `prismq-tests` package.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The fixtures directory of the `tests/` package.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find_map(|d| {
            let f = d.join("tests/fixtures/ytdlp");
            f.is_dir().then_some(f)
        })
        .expect("tests/fixtures/ytdlp in an ancestor of the manifest dir")
}

/// The fake and its working directory.
#[derive(Debug)]
pub struct FakeYtdlp {
    dir: tempfile::TempDir,
}

impl FakeYtdlp {
    /// A fake whose first detail run sleeps `first_run_sleep_secs` (0: never).
    pub fn new(first_run_sleep_secs: u32) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let f = fixtures();
        for name in ["channel_videos_flat", "search_flat"] {
            std::fs::copy(
                f.join(format!("{name}.json")),
                d.join(format!("{name}.json")),
            )
            .expect("copy fixture");
        }
        let full: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(f.join("video_full.json")).expect("video fixture"),
        )
        .expect("video fixture parses");
        // One line, as `yt-dlp -j` prints it; the id is replaced per request.
        std::fs::write(d.join("video.json"), full.to_string()).expect("write template");
        let (handle, channel_id) = write_channel_tabs(d, &full);
        let dq = d.display();
        let sleep = if first_run_sleep_secs > 0 {
            format!(
                "if mkdir '{dq}/slept' 2>/dev/null; then sleep {first_run_sleep_secs} & echo $! > '{dq}/sleeper.pid'; wait $!; fi"
            )
        } else {
            String::new()
        };
        let script = format!(
            r#"#!/bin/sh
PATH=/usr/bin:/bin:$PATH
for a in "$@"; do printf '%s\n' "$a" >> '{dq}/args.log'; done
echo '----' >> '{dq}/args.log'
case " $* " in
  *" -J "*)
    case " $* " in
      *ytsearch*) cat '{dq}/search_flat.json' ;;
      *"/@{handle} "*|*"/channel/{channel_id} "*) cat '{dq}/tabs_channel.json' ;;
      *"/@{handle}/videos "*|*"/channel/{channel_id}/videos "*) cat '{dq}/tabs_videos.json' ;;
      *"/@{handle}/shorts "*|*"/channel/{channel_id}/shorts "*) cat '{dq}/tabs_shorts.json' ;;
      *"/@{handle}/streams "*|*"/channel/{channel_id}/streams "*) cat '{dq}/tabs_streams.json' ;;
      *"list=UU{uu} "*) cat '{dq}/tabs_uploads.json' ;;
      *"{handle}"*|*"{channel_id}"*)
        echo "ERROR: [youtube:tab] {channel_id}: This channel does not have a requested tab" >&2
        exit 1 ;;
      *) cat '{dq}/channel_videos_flat.json' ;;
    esac
    exit 0 ;;
esac
{sleep}
for a in "$@"; do
  case "$a" in
    https://www.youtube.com/watch\?v=*)
      id="${{a#*v=}}"
      echo "$id" >> '{dq}/details.log'
      if [ -f "{dq}/v_$id.json" ]; then cat "{dq}/v_$id.json"; else
        sed "s/Kq9MZLmFMHQ/$id/g" '{dq}/video.json'; fi
      echo ;;
  esac
done
exit 0
"#,
            uu = &channel_id[2..],
        );
        let path = d.join("yt-dlp");
        std::fs::write(&path, script).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("chmod script");
        FakeYtdlp { dir }
    }

    /// The script's path (for `youtube.ytdlp_path`).
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("yt-dlp")
    }

    /// The video ids detail runs were asked for, one per line, in order.
    pub fn details(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("details.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Each run's arguments, in order.
    pub fn runs(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(self.dir.path().join("args.log"))
            .unwrap_or_default()
            .split("----\n")
            .filter(|r| !r.is_empty())
            .map(|r| r.lines().map(str::to_owned).collect())
            .collect()
    }

    /// The pid of the sleeping first run, once it started.
    pub fn sleeper(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.path().join("sleeper.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

/// The path of the shared channel model.
pub fn channel_tabs_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|d| d.join("tests/fixtures/channel_tabs.json"))
        .find(|f| f.is_file())
        .expect("tests/fixtures/channel_tabs.json in an ancestor of the manifest dir")
}

/// Writes the Tabs Demo channel's answers into `d` from the shared model: one flat listing
/// per tab and for the `UU…` playlist, the channel page (no entries), and one `-j` line per
/// video (the full fixture re-labelled). Returns the handle and the channel id.
fn write_channel_tabs(d: &Path, full: &serde_json::Value) -> (String, String) {
    use serde_json::{json, Value};
    let model: Value =
        serde_json::from_str(&std::fs::read_to_string(channel_tabs_path()).expect("channel model"))
            .expect("channel model parses");
    let id = model["channel_id"].as_str().expect("channel_id").to_owned();
    let handle = model["handle"].as_str().expect("handle").to_owned();
    let name = model["title"].clone();
    let uploads = model["uploads"].as_array().expect("uploads");
    let page = |title: &str, entries: Vec<Value>, url: String| {
        json!({
            "id": id, "channel": name, "channel_id": id, "title": title,
            "uploader_id": format!("@{handle}"), "_type": "playlist", "entries": entries,
            "extractor_key": "YoutubeTab", "extractor": "youtube:tab",
            "webpage_url": url, "playlist_count": null,
        })
    };
    let flat = |u: &Value, as_short: bool| {
        let vid = u["id"].as_str().expect("id");
        if as_short {
            // The Shorts tab's entries: no duration, no description, a /shorts/ URL.
            json!({"ie_key": "Youtube", "id": vid, "title": u["title"], "view_count": u["views"],
                   "_type": "url", "url": format!("https://www.youtube.com/shorts/{vid}")})
        } else {
            json!({"_type": "url", "ie_key": "Youtube", "id": vid,
                   "url": format!("https://www.youtube.com/watch?v={vid}"),
                   "title": u["title"], "duration": u["duration"], "view_count": u["views"],
                   "live_status": if u["kind"] == "stream" { json!("was_live") } else { Value::Null }})
        }
    };
    let of_kind = |kind: &str| -> Vec<Value> {
        uploads
            .iter()
            .filter(|u| u["kind"] == kind)
            .map(|u| flat(u, kind == "short"))
            .collect()
    };
    let base = format!("https://www.youtube.com/@{handle}");
    let files = [
        (
            "tabs_channel.json",
            page(&name.to_string(), Vec::new(), base.clone()),
        ),
        (
            "tabs_videos.json",
            page("Videos", of_kind("long"), format!("{base}/videos")),
        ),
        (
            "tabs_shorts.json",
            page("Shorts", of_kind("short"), format!("{base}/shorts")),
        ),
        (
            "tabs_streams.json",
            page("Live", of_kind("stream"), format!("{base}/streams")),
        ),
        (
            "tabs_uploads.json",
            page(
                "Uploads",
                uploads.iter().map(|u| flat(u, false)).collect(),
                format!("https://www.youtube.com/playlist?list=UU{}", &id[2..]),
            ),
        ),
    ];
    for (file, body) in files {
        std::fs::write(d.join(file), body.to_string()).expect("write listing");
    }
    for u in uploads {
        let vid = u["id"].as_str().expect("id");
        let mut v = full.clone();
        v["id"] = json!(vid);
        v["title"] = u["title"].clone();
        v["fulltitle"] = u["title"].clone();
        v["duration"] = u["duration"].clone();
        v["view_count"] = u["views"].clone();
        v["timestamp"] = u["timestamp"].clone();
        v["upload_date"] = u["upload_date"].clone();
        v["channel"] = name.clone();
        v["channel_id"] = json!(id);
        v["webpage_url"] = json!(format!("https://www.youtube.com/watch?v={vid}"));
        let (media, live) = match u["kind"].as_str() {
            Some("short") => ("short", "not_live"),
            Some("stream") => ("livestream", "was_live"),
            _ => ("video", "not_live"),
        };
        v["media_type"] = json!(media);
        v["live_status"] = json!(live);
        v["was_live"] = json!(live == "was_live");
        std::fs::write(d.join(format!("v_{vid}.json")), v.to_string()).expect("write video");
    }
    (handle, id)
}

impl Drop for FakeYtdlp {
    fn drop(&mut self) {
        if let Some(pid) = self.sleeper() {
            let _ = std::process::Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        }
    }
}
