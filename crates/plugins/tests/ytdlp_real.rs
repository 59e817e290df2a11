//! Our yt-dlp arguments against a REAL yt-dlp's option parser, without network: every
//! option we pass must be one `yt-dlp --help` documents (a deprecated option such as
//! `--playlist-end` is hidden from it), and yt-dlp must accept the exact argument lists
//! the adapter builds without a warning. `--list-extractors` is the parse-only path: yt-dlp
//! parses and validates every option (printing deprecation warnings), then lists which
//! extractor takes each URL and exits, before any network access.
//!
//! The program comes from `PRISMQ_TEST_YTDLP`, which `scripts/services/ytdlp.sh` exports
//! (scripts/check.sh sources it). Unset, the test fails: it never passes without yt-dlp.

use prismq_plugins::youtube::ids::ChannelRef;
use prismq_plugins::youtube::params::{DurationFilter, PublishedWithin, SortBy};
use prismq_plugins::youtube::source::ytdlp::{
    channel_id_args, details_args, listing_args, search_target,
};
use prismq_plugins::youtube::source::SearchQuery;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::process::{Command, Output};

fn ytdlp() -> String {
    match std::env::var("PRISMQ_TEST_YTDLP") {
        Ok(p) if !p.trim().is_empty() => p,
        _ => panic!(
            "PRISMQ_TEST_YTDLP is not set, so there is no real yt-dlp to check our arguments \
             against. Install it first with `source scripts/services/ytdlp.sh` (scripts/check.sh \
             does this), then run the tests again in the same shell"
        ),
    }
}

fn run(args: &[OsString]) -> Output {
    Command::new(ytdlp())
        .arg("--ignore-config")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run yt-dlp")
}

/// Every option name `yt-dlp --help` lists (`-I`, `--playlist-items`, `--flat-playlist`, …).
fn documented_options() -> BTreeSet<String> {
    let out = run(&[OsString::from("--help")]);
    assert!(out.status.success(), "yt-dlp --help failed");
    let help = String::from_utf8_lossy(&out.stdout);
    let mut names = BTreeSet::new();
    for line in help.lines() {
        let line = line.trim_start();
        if !line.starts_with('-') {
            continue;
        }
        let column = line.split("  ").next().unwrap_or_default();
        for part in column.split(", ") {
            if let Some(name) = part.split_whitespace().next() {
                if name.starts_with('-') {
                    names.insert(name.to_string());
                }
            }
        }
    }
    assert!(
        names.contains("--flat-playlist") && names.contains("-j") && names.len() > 100,
        "the help could not be read: {names:?}"
    );
    names
}

/// The options in `args` before `--` that `documented` does not list.
fn undocumented(args: &[OsString], documented: &BTreeSet<String>) -> Vec<String> {
    args.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .take_while(|a| a != "--")
        .filter(|a| a.starts_with('-') && !documented.contains(a))
        .collect()
}

/// Runs `args` (an argument list the adapter builds) with `--list-extractors` in front of
/// its `--`: fails on a refused or deprecated option or a warning, and returns which
/// extractor took each URL.
fn parse_only(args: &[OsString]) -> BTreeMap<String, String> {
    let dash = args.iter().position(|a| a == "--").expect("a -- separator");
    let mut with = args[..dash].to_vec();
    with.push("--list-extractors".into());
    with.extend_from_slice(&args[dash..]);
    let out = run(&with);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "yt-dlp refused {args:?} ({:?}): {stderr}",
        out.status
    );
    assert!(
        stderr.trim().is_empty(),
        "yt-dlp warned about {args:?}: {stderr}"
    );
    let mut taken = BTreeMap::new();
    let mut extractor = String::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        match line.strip_prefix("  ") {
            Some(url) => {
                taken.insert(url.to_string(), extractor.clone());
            }
            None => extractor = line.trim().to_string(),
        }
    }
    taken
}

fn search(sort_by: SortBy, within: PublishedWithin, duration: DurationFilter) -> SearchQuery {
    SearchQuery {
        query: "surf trip -live".into(),
        top_n: 7,
        published_after: None,
        published_within: within,
        duration,
        sort_by,
        region: None,
        language: None,
    }
}

#[test]
fn our_arguments_parse_in_a_real_ytdlp_without_deprecated_options() {
    let documented = documented_options();
    let channel = ChannelRef::Handle("GoogleDevelopers".into()).tab_url("videos");
    let plain = search_target(&search(
        SortBy::Relevance,
        PublishedWithin::All,
        DurationFilter::Any,
    ))
    .unwrap();
    let filtered = search_target(&search(
        SortBy::Views,
        PublishedWithin::Week,
        DurationFilter::Short,
    ))
    .unwrap();
    let watch: Vec<String> = ["Kq9MZLmFMHQ", "rTw3pGhYsLM"]
        .iter()
        .map(|id| format!("https://www.youtube.com/watch?v={id}"))
        .collect();
    let handle = ChannelRef::Handle("GoogleDevelopers".into());
    let streams = handle.tab_url("streams");
    let uploads = prismq_plugins::youtube::ids::playlist_url("UU_x5XG1OV2P6uZZ5FSM9Ttw");
    let cases = [
        (listing_args(&channel, 50), "youtube:tab"),
        (listing_args(&streams, 50), "youtube:tab"),
        (listing_args(&uploads, 50), "youtube:tab"),
        (channel_id_args(&handle.page_url()), "youtube:tab"),
        (listing_args(&plain, 7), "youtube:search"),
        (listing_args(&filtered, 7), "youtube:search_url"),
        (details_args(&watch), "youtube"),
    ];
    for (args, extractor) in &cases {
        assert_eq!(
            undocumented(args, &documented),
            Vec::<String>::new(),
            "options yt-dlp --help does not list (unknown or deprecated) in {args:?}"
        );
        let taken = parse_only(args);
        let dash = args.iter().position(|a| a == "--").unwrap();
        for url in &args[dash + 1..] {
            let url = url.to_string_lossy();
            assert_eq!(
                taken.get(url.as_ref()).map(String::as_str),
                Some(*extractor),
                "{url}: {taken:?}"
            );
        }
    }
}

#[test]
fn the_check_catches_a_deprecated_or_unknown_option() {
    let documented = documented_options();
    // The form the adapter used before: accepted by the parser, but hidden from --help.
    let old: Vec<OsString> = [
        "--flat-playlist",
        "-J",
        "--playlist-end",
        "3",
        "--",
        "ytsearch3:x",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    assert_eq!(undocumented(&old, &documented), ["--playlist-end"]);
    // An option yt-dlp does not know is refused before any network access.
    let out = run(&[
        "--no-such-option-here".into(),
        "--list-extractors".into(),
        "--".into(),
        "ytsearch1:x".into(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such option"));
}
