//! Tests of loading: the layering order, every error kind, aliases and redaction. Files live
//! in temporary directories and the environment is an explicit map.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use prismq_domain::ClaimingStrategy;
use prismq_plugins::{ApiKey, Backend, YoutubeConfig};

use super::*;

/// The `[youtube]` section as the YouTube plugin types it.
fn yt(c: &Config) -> YoutubeConfig {
    YoutubeConfig::from_section(&c.plugin_section("youtube")).unwrap()
}

struct Dirs {
    _tmp: tempfile::TempDir,
    platform: PathBuf,
    work: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let platform = tmp.path().join("platform");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&platform).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    Dirs {
        _tmp: tmp,
        platform,
        work,
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn opts(d: &Dirs) -> LoadOptions {
    LoadOptions {
        platform_config_dir: Some(d.platform.clone()),
        working_dir: Some(d.work.clone()),
        ..LoadOptions::default()
    }
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn overrides(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load_env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::load(&LoadOptions {
        env: env(pairs),
        ..LoadOptions::default()
    })
}

fn load_flags(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::load(&LoadOptions {
        overrides: overrides(pairs),
        ..LoadOptions::default()
    })
}

#[test]
fn defaults_only() {
    let c = Config::load(&LoadOptions::default()).unwrap();
    assert_eq!(c.worker, WorkerConfig::default());
    assert_eq!(c.worker.strategy, ClaimingStrategy::Lifo);
    assert_eq!(c.worker.concurrency, default_concurrency());
    assert_eq!(c.worker.lease, Duration::from_secs(60));
    assert_eq!(c.worker.heartbeat_interval, Duration::from_secs(10));
    assert_eq!(c.worker.idle_backoff_min, Duration::from_millis(50));
    assert_eq!(c.worker.idle_backoff_max, Duration::from_secs(5));
    assert_eq!(c.worker.handler_timeout, Duration::from_secs(600));
    assert_eq!(c.worker.shutdown_grace, Duration::from_secs(30));
    assert_eq!(c.database, DatabaseConfig::default());
    assert_eq!(c.retry.policy(), prismq_domain::RetryPolicy::default());
    assert_eq!(yt(&c), YoutubeConfig::default());
    assert_eq!(c.logging, LoggingConfig::default());
    for e in c.effective().entries {
        assert_eq!(e.origin, Origin::Default, "{}", e.key);
    }
}

#[test]
fn layers_apply_in_order_later_wins() {
    let d = dirs();
    let platform = write(
        &d.platform,
        FILE_NAME,
        "[worker]\nconcurrency = 2\nstrategy = \"fifo\"\nlease = \"20s\"\nhandler_timeout = 5000\nshutdown_grace = \"1s\"\n",
    );
    let local = write(
        &d.work,
        FILE_NAME,
        "[worker]\nstrategy = \"priority\"\nlease = \"30s\"\nhandler_timeout = \"6s\"\nshutdown_grace = \"2s\"\n",
    );
    let mut o = opts(&d);
    o.env = env(&[
        ("PRISMQ_WORKER__LEASE", "40s"),
        ("PRISMQ_WORKER__HANDLER_TIMEOUT", "7000"),
        ("PRISMQ_WORKER__SHUTDOWN_GRACE", "3s"),
        ("UNRELATED", "x"),
    ]);
    o.overrides = overrides(&[
        ("worker.handler_timeout", "8s"),
        ("worker.shutdown_grace", "4s"),
        ("worker.shutdown_grace", "5s"),
    ]);
    let c = Config::load(&o).unwrap();
    assert_eq!(c.worker.concurrency, 2);
    assert_eq!(c.worker.strategy, ClaimingStrategy::Priority);
    assert_eq!(c.worker.lease, Duration::from_secs(40));
    assert_eq!(c.worker.handler_timeout, Duration::from_secs(8));
    assert_eq!(
        c.worker.shutdown_grace,
        Duration::from_secs(5),
        "last override wins"
    );
    assert_eq!(c.worker.heartbeat_interval, Duration::from_secs(10));

    assert_eq!(c.origin("worker.concurrency"), Origin::File(platform));
    assert_eq!(c.origin("worker.strategy"), Origin::File(local));
    assert_eq!(
        c.origin("worker.lease"),
        Origin::Env("PRISMQ_WORKER__LEASE".into())
    );
    assert_eq!(
        c.origin("worker.handler_timeout"),
        Origin::Flag("worker.handler_timeout".into())
    );
    assert_eq!(c.origin("worker.heartbeat_interval"), Origin::Default);
}

#[test]
fn explicit_file_replaces_the_working_directory_file() {
    let d = dirs();
    write(
        &d.work,
        FILE_NAME,
        "[worker]\nconcurrency = 3\nstrategy = \"fifo\"\n",
    );
    let other = write(&d.work, "other.toml", "[worker]\nconcurrency = 4\n");
    let mut o = opts(&d);
    o.config_file = Some(PathBuf::from("other.toml")); // relative to the working directory
    let c = Config::load(&o).unwrap();
    assert_eq!(c.worker.concurrency, 4);
    assert_eq!(
        c.worker.strategy,
        ClaimingStrategy::Lifo,
        "./prismq.toml not read"
    );
    assert_eq!(c.origin("worker.concurrency"), Origin::File(other.clone()));

    // PRISMQ_CONFIG names the file when --config is absent; --config wins over it.
    let third = write(&d.work, "third.toml", "[worker]\nconcurrency = 5\n");
    let mut o = opts(&d);
    o.env = env(&[(ENV_CONFIG_FILE, third.to_str().unwrap())]);
    assert_eq!(Config::load(&o).unwrap().worker.concurrency, 5);
    o.config_file = Some(other);
    assert_eq!(Config::load(&o).unwrap().worker.concurrency, 4);
}

#[test]
fn missing_explicit_file_is_an_error() {
    let d = dirs();
    let mut o = opts(&d);
    o.config_file = Some(d.work.join("nope.toml"));
    match Config::load(&o).unwrap_err() {
        ConfigError::MissingFile { path } => assert_eq!(path, d.work.join("nope.toml")),
        e => panic!("{e:?}"),
    }
}

#[test]
fn invalid_toml_names_the_file() {
    let d = dirs();
    let p = write(&d.work, FILE_NAME, "[worker\nconcurrency = ");
    match Config::load(&opts(&d)).unwrap_err() {
        ConfigError::File { path, .. } => assert_eq!(path, p),
        e => panic!("{e:?}"),
    }
}

#[test]
fn unknown_keys_are_errors_naming_key_and_origin() {
    let d = dirs();
    let p = write(&d.work, FILE_NAME, "[worker]\nconcurency = 2\n");
    match Config::load(&opts(&d)).unwrap_err() {
        ConfigError::UnknownKey { key, origin, known } => {
            assert_eq!(key, "worker.concurency");
            assert_eq!(origin, Origin::File(p));
            assert!(known.contains(&"worker.concurrency".to_owned()));
        }
        e => panic!("{e:?}"),
    }

    let d = dirs();
    write(&d.work, FILE_NAME, "[workr]\nconcurrency = 2\n");
    match Config::load(&opts(&d)).unwrap_err() {
        ConfigError::UnknownKey { key, known, .. } => {
            assert_eq!(key, "workr");
            assert!(known.contains(&"worker".to_owned()));
        }
        e => panic!("{e:?}"),
    }

    match load_env(&[("PRISMQ_WORKER__CONCURENCY", "2")]).unwrap_err() {
        ConfigError::UnknownKey { key, origin, .. } => {
            assert_eq!(key, "worker.concurency");
            assert_eq!(origin, Origin::Env("PRISMQ_WORKER__CONCURENCY".into()));
        }
        e => panic!("{e:?}"),
    }

    // A single underscore is not a setting: an error, not silently ignored.
    match load_env(&[("PRISMQ_WORKER_CONCURRENCY", "2")]).unwrap_err() {
        ConfigError::UnknownKey { key, known, .. } => {
            assert_eq!(key, "PRISMQ_WORKER_CONCURRENCY");
            assert!(known.contains(&"PRISMQ_WORKER__CONCURRENCY".to_owned()));
        }
        e => panic!("{e:?}"),
    }

    match load_flags(&[("worker.lease_length", "5s")]).unwrap_err() {
        ConfigError::UnknownKey { key, origin, .. } => {
            assert_eq!(key, "worker.lease_length");
            assert_eq!(origin, Origin::Flag("worker.lease_length".into()));
        }
        e => panic!("{e:?}"),
    }
}

#[track_caller]
fn assert_invalid(
    r: Result<Config, ConfigError>,
    want_key: &str,
    want_value: &str,
    accepted_has: &str,
) {
    match r.unwrap_err() {
        ConfigError::InvalidValue {
            key,
            value,
            accepted,
            ..
        } => {
            assert_eq!(key, want_key);
            assert_eq!(value, want_value);
            assert!(accepted.contains(accepted_has), "{accepted}");
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn bad_values_name_key_value_and_accepted() {
    assert_invalid(
        load_flags(&[("worker.strategy", "random")]),
        "worker.strategy",
        "\"random\"",
        "weighted_random",
    );
    assert_invalid(
        load_flags(&[("worker.lease", "10x")]),
        "worker.lease",
        "\"10x\"",
        "30s",
    );
    assert_invalid(
        load_flags(&[("worker.lease", "500ms")]),
        "worker.lease",
        "\"500ms\"",
        "from 1s to 1d",
    );
    assert_invalid(
        load_flags(&[("worker.concurrency", "0")]),
        "worker.concurrency",
        "\"0\"",
        "1 to 1024",
    );
    assert_invalid(
        load_flags(&[("worker.prefetch", "0")]),
        "worker.prefetch",
        "\"0\"",
        "1 to 256",
    );
    assert_invalid(
        load_flags(&[("worker.prefetch", "257")]),
        "worker.prefetch",
        "\"257\"",
        "1 to 256",
    );
    assert_invalid(
        load_flags(&[("worker.prefetch", "many")]),
        "worker.prefetch",
        "\"many\"",
        "\"auto\", or an integer from 1 to 256",
    );
    assert_eq!(
        load_flags(&[("worker.prefetch", "AUTO")])
            .unwrap()
            .worker
            .prefetch,
        Prefetch::Auto
    );
    assert_eq!(
        load_flags(&[("worker.prefetch", "8")])
            .unwrap()
            .worker
            .prefetch,
        Prefetch::AtMost(8)
    );
    assert_eq!(
        WorkerConfig::default().prefetch,
        Prefetch::Auto,
        "the default"
    );
    assert_invalid(
        load_flags(&[("worker.concurrency", "many")]),
        "worker.concurrency",
        "\"many\"",
        "integer",
    );
    assert_invalid(
        load_flags(&[("worker.task_types", "ok,Bad Type")]),
        "worker.task_types",
        "\"ok,Bad Type\"",
        "a-z",
    );
    assert_invalid(
        load_flags(&[("worker.region", "USA")]),
        "worker.region",
        "\"USA\"",
        "alpha-2",
    );
    assert_invalid(
        load_flags(&[("database.synchronous", "off")]),
        "database.synchronous",
        "\"off\"",
        "normal, full",
    );
    assert_invalid(
        load_flags(&[("database.url", "mysql://x/db")]),
        "database.url",
        "\"mysql://x/db\"",
        "postgres://",
    );
    // A server URL is checked by the storage boundary, with what its engine accepts.
    assert_invalid(
        load_flags(&[("database.url", "postgres://h/db?sslmode=sometimes")]),
        "database.url",
        "\"postgres://h/db?sslmode=sometimes\"",
        "?sslmode= (disable, prefer, require, verify-ca, verify-full)",
    );
    assert_invalid(
        load_flags(&[("youtube.backend", "scrape")]),
        "youtube.backend",
        "\"scrape\"",
        "api, ytdlp, auto",
    );
    assert_invalid(
        load_flags(&[("youtube.api_base_url", "ftp://x")]),
        "youtube.api_base_url",
        "\"ftp://x\"",
        "https://",
    );
    assert_invalid(
        load_flags(&[("logging.level", "loud")]),
        "logging.level",
        "\"loud\"",
        "debug",
    );
    assert_invalid(
        load_flags(&[("logging.format", "xml")]),
        "logging.format",
        "\"xml\"",
        "text, json",
    );
    assert_invalid(
        load_flags(&[("retry.max_attempts", "101")]),
        "retry.max_attempts",
        "\"101\"",
        "1 to 100",
    );
}

#[test]
fn bad_values_from_files_keep_their_type_and_origin() {
    let d = dirs();
    let p = write(
        &d.work,
        FILE_NAME,
        "[worker]\nconcurrency = true\nlease = {a = 1}\n",
    );
    match Config::load(&opts(&d)).unwrap_err() {
        ConfigError::InvalidValue {
            key,
            value,
            problem,
            origin,
            ..
        } => {
            assert_eq!(key, "worker.concurrency");
            assert_eq!(value, "true");
            assert!(problem.contains("boolean"), "{problem}");
            assert_eq!(origin, Origin::File(p));
        }
        e => panic!("{e:?}"),
    }
    let d = dirs();
    write(&d.work, FILE_NAME, "worker = 3\n");
    match Config::load(&opts(&d)).unwrap_err() {
        ConfigError::InvalidValue { key, .. } => assert_eq!(key, "worker"),
        e => panic!("{e:?}"),
    }
}

#[test]
fn cross_field_conflicts() {
    assert_invalid(
        load_flags(&[
            ("worker.idle_backoff_min", "2s"),
            ("worker.idle_backoff_max", "1s"),
        ]),
        "worker.idle_backoff_max",
        "1s",
        "at least worker.idle_backoff_min (2s)",
    );
    assert_invalid(
        load_flags(&[("retry.base", "1m"), ("retry.cap", "30s")]),
        "retry.cap",
        "30s",
        "retry.base",
    );
    assert_invalid(
        load_flags(&[("database.path", "a.db"), ("database.url", "sqlite:b.db")]),
        "database.url",
        "\"sqlite:b.db\"",
        "only one",
    );
}

#[test]
fn environment_values_are_typed_from_text() {
    let c = load_env(&[
        ("PRISMQ_WORKER__CONCURRENCY", "4"),
        (
            "PRISMQ_WORKER__TASK_TYPES",
            "channel_scrape, keyword_search,channel_scrape",
        ),
        ("PRISMQ_WORKER__REGION", "gb"),
        ("PRISMQ_WORKER__STRATEGY", "Weighted-Random"),
        ("PRISMQ_DATABASE__URL", "sqlite:///tmp/q.db"),
        ("PRISMQ_DATABASE__SYNCHRONOUS", "FULL"),
        ("PRISMQ_LOGGING__LEVEL", "info,prismq_app=debug"),
        ("PRISMQ_LOGGING__FORMAT", "json"),
        ("PRISMQ_RETRY__MAX_ATTEMPTS", "7"),
        ("PRISMQ_WORKER__IDLE_BACKOFF_MAX", ""), // empty: unset
    ])
    .unwrap();
    assert_eq!(c.worker.concurrency, 4);
    let types: Vec<&str> = c.worker.task_types.iter().map(|t| t.as_str()).collect();
    assert_eq!(types, ["channel_scrape", "keyword_search"]);
    assert_eq!(c.worker.region.as_deref(), Some("GB"));
    assert_eq!(c.worker.strategy, ClaimingStrategy::WeightedRandom);
    assert_eq!(c.database.sqlite_path(), Some(PathBuf::from("/tmp/q.db")));
    assert_eq!(c.database.synchronous, Synchronous::Full);
    assert_eq!(c.logging.level, "info,prismq_app=debug");
    assert_eq!(c.logging.format, LogFormat::Json);
    assert_eq!(c.retry.max_attempts, 7);
    assert_eq!(c.worker.idle_backoff_max, Duration::from_secs(5));
}

#[test]
fn api_base_url_takes_https_anywhere_and_http_on_loopback_only() {
    for (given, stored) in [
        (
            "https://www.googleapis.com/youtube/v3",
            "https://www.googleapis.com/youtube/v3",
        ),
        (
            "https://yt.example.com:8443/v3/",
            "https://yt.example.com:8443/v3",
        ),
        ("HTTPS://Example.COM", "HTTPS://Example.COM"),
        (
            "http://127.0.0.1:9000/youtube/v3",
            "http://127.0.0.1:9000/youtube/v3",
        ),
        ("http://127.8.9.10/v3", "http://127.8.9.10/v3"),
        ("http://localhost:9000/v3/", "http://localhost:9000/v3"),
        ("http://LocalHost/v3", "http://LocalHost/v3"),
        (
            "http://[::1]:9000/youtube/v3",
            "http://[::1]:9000/youtube/v3",
        ),
        ("HTTP://127.0.0.1:9000", "HTTP://127.0.0.1:9000"),
    ] {
        let c = load_flags(&[("youtube.api_base_url", given)])
            .unwrap_or_else(|e| panic!("{given}: {e}"));
        assert_eq!(yt(&c).api_base_url, stored, "{given}");
    }
    for (bad, problem_has) in [
        // Plain http to anything but loopback, however the host is spelled.
        ("http://www.googleapis.com/youtube/v3", "clear text"),
        ("http://10.0.0.1:9000/v3", "clear text"),
        ("http://192.168.1.5/v3", "clear text"),
        ("http://[::2]/v3", "clear text"),
        ("http://[::ffff:7f00:1]/v3", "clear text"),
        ("http://localhost.example.com/v3", "clear text"),
        ("http://127.0.0.1.example.com/v3", "clear text"),
        ("http://localhost@example.com/v3", "clear text"),
        ("http://localhost:pw@example.com/v3", "clear text"),
        // Other schemes, and text that is no URL.
        ("ftp://127.0.0.1/v3", "scheme ftp:"),
        ("file:///tmp/youtube", "scheme file:"),
        ("ws://localhost/v3", "scheme ws:"),
        ("localhost:9000/v3", "scheme localhost:"),
        ("www.googleapis.com/youtube/v3", "not a URL"),
        ("https://", "not a URL"),
        ("http://", "not a URL"),
        ("http://127.0.0.1:99999/v3", "not a URL"),
        ("https://exa mple.com", "whitespace"),
        ("", "empty"),
    ] {
        match load_flags(&[("youtube.api_base_url", bad)]).unwrap_err() {
            ConfigError::InvalidValue {
                key,
                value,
                problem,
                accepted,
                origin,
            } => {
                assert_eq!(key, "youtube.api_base_url", "{bad}");
                assert_eq!(value, format!("{bad:?}"), "{bad}");
                assert!(problem.contains(problem_has), "{bad}: {problem}");
                assert!(accepted.contains("https://"), "{bad}: {accepted}");
                assert!(accepted.contains("loopback"), "{bad}: {accepted}");
                assert_eq!(origin, Origin::Flag("youtube.api_base_url".into()), "{bad}");
            }
            e => panic!("{bad}: {e:?}"),
        }
    }
    // The whole message, as the CLI prints it, from the environment variable.
    let e = load_env(&[(
        "PRISMQ_YOUTUBE__API_BASE_URL",
        "http://yt.example.com/youtube/v3",
    )])
    .unwrap_err();
    let text = e.to_string();
    for part in [
        "`youtube.api_base_url`",
        "PRISMQ_YOUTUBE__API_BASE_URL",
        "\"http://yt.example.com/youtube/v3\"",
        "clear text",
        "an https:// URL",
        "localhost, 127.0.0.0/8 or [::1]",
    ] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }
}

#[test]
fn file_values_are_typed_natively() {
    let d = dirs();
    write(
        &d.work,
        FILE_NAME,
        r#"
[database]
path = "queue.db"
busy_timeout = "2s"
[worker]
task_types = ["api_scrape"]
idle_backoff_min = 10
idle_backoff_max = "1m"
[retry]
base = "1s"
cap = "1h"
max_attempts = 5
[youtube]
backend = "ytdlp"
ytdlp_path = "/opt/yt-dlp"
api_base_url = "http://127.0.0.1:9000/youtube/v3/"
quota_units_per_day = 500
search_calls_per_day = 1
ytdlp_timeout = "2m"
request_timeout = "10s"
"#,
    );
    let c = Config::load(&opts(&d)).unwrap();
    assert_eq!(c.database.sqlite_path(), Some(PathBuf::from("queue.db")));
    assert_eq!(c.database.busy_timeout, Duration::from_secs(2));
    assert_eq!(c.worker.task_types.len(), 1);
    assert_eq!(c.worker.idle_backoff_min, Duration::from_millis(10));
    assert_eq!(c.worker.idle_backoff_max, Duration::from_secs(60));
    assert_eq!(c.retry.policy().cap, Duration::from_secs(3600));
    assert_eq!(c.retry.max_attempts, 5);
    let y = yt(&c);
    assert_eq!(y.backend, Backend::Ytdlp);
    assert_eq!(y.ytdlp_path, PathBuf::from("/opt/yt-dlp"));
    assert_eq!(y.api_base_url, "http://127.0.0.1:9000/youtube/v3");
    assert_eq!(y.quota.general_daily_units, 500);
    assert_eq!(y.quota.search_daily_units, 1);
    assert_eq!(y.ytdlp_timeout(), Duration::from_secs(120));
    assert_eq!(y.request_timeout(), Duration::from_secs(10));
}

#[test]
fn aliases_and_their_precedence() {
    let c = load_env(&[
        ("YOUTUBE_API_KEY", "AIza-alias"),
        ("PRISMQ_QUEUE_DB_PATH", "/q/a.db"),
    ])
    .unwrap();
    assert_eq!(
        yt(&c).api_key.as_ref().map(ApiKey::expose),
        Some("AIza-alias")
    );
    assert_eq!(
        c.origin("youtube.api_key"),
        Origin::Env("YOUTUBE_API_KEY".into())
    );
    assert_eq!(c.database.sqlite_path(), Some(PathBuf::from("/q/a.db")));

    let c = load_env(&[
        ("YOUTUBE_API_KEY", "AIza-alias"),
        ("PRISMQ_YOUTUBE__API_KEY", "AIza-specific"),
    ])
    .unwrap();
    assert_eq!(
        yt(&c).api_key.as_ref().map(ApiKey::expose),
        Some("AIza-specific")
    );

    // A file key is beaten by the environment alias.
    let d = dirs();
    write(&d.work, FILE_NAME, "[youtube]\napi_key = \"AIza-file\"\n");
    let mut o = opts(&d);
    assert_eq!(
        yt(&Config::load(&o).unwrap())
            .api_key
            .map(|s| s.expose().to_owned()),
        Some("AIza-file".to_owned())
    );
    o.env = env(&[("YOUTUBE_API_KEY", "AIza-env")]);
    assert_eq!(
        yt(&Config::load(&o).unwrap())
            .api_key
            .map(|s| s.expose().to_owned()),
        Some("AIza-env".to_owned())
    );
}

#[test]
fn secrets_are_redacted_everywhere() {
    let c = load_env(&[("YOUTUBE_API_KEY", "AIzaTopSecret")]).unwrap();
    let dump = c.effective();
    let entry = dump
        .entries
        .iter()
        .find(|e| e.key == "youtube.api_key")
        .unwrap();
    assert_eq!(entry.value, serde_json::json!(REDACTED));
    for text in [
        dump.to_string(),
        serde_json::to_string(&dump).unwrap(),
        format!("{c:?}"),
        serde_json::to_string(&c).unwrap(),
    ] {
        assert!(!text.contains("TopSecret"), "{text}");
    }
    assert!(dump.to_string().contains("<redacted>"));

    // A bad secret is not quoted back in the error either.
    let e = load_env(&[("YOUTUBE_API_KEY", "AIza Top Secret")]).unwrap_err();
    match &e {
        ConfigError::InvalidValue { key, value, .. } => {
            assert_eq!(key, "youtube.api_key");
            assert_eq!(value, REDACTED);
        }
        e => panic!("{e:?}"),
    }
    assert!(!e.to_string().contains("Secret"), "{e}");
}

#[test]
fn effective_lists_every_key_with_origin() {
    let c = load_flags(&[("worker.lease", "90s")]).unwrap();
    let dump = c.effective();
    let keys: Vec<&str> = dump.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, c.keys());
    // The app's keys in their order, with the plugin's section where [youtube] always was.
    let app: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| !k.starts_with("youtube."))
        .collect();
    assert_eq!(app, KEYS);
    let first = keys.iter().position(|k| k.starts_with("youtube.")).unwrap();
    assert!(keys[first - 1].starts_with("retry.") && keys[first + 9].starts_with("logging."));
    let lease = dump
        .entries
        .iter()
        .find(|e| e.key == "worker.lease")
        .unwrap();
    assert_eq!(lease.value, serde_json::json!("1m30s"));
    assert_eq!(lease.origin, Origin::Flag("worker.lease".into()));
    let text = dump.to_string();
    assert!(text.contains("worker.lease = \"1m30s\""), "{text}");
    assert!(
        text.contains("# command-line override of worker.lease"),
        "{text}"
    );
    assert!(text.contains("database.path = (unset)"), "{text}");
}

#[test]
fn typed_config_and_key_list_agree() {
    // Every serialized field is a known key and every known key is serialized.
    let tree = serde_json::to_value(Config::default()).unwrap();
    let mut serialized = Vec::new();
    for (section, fields) in tree.as_object().unwrap() {
        for field in fields.as_object().unwrap().keys() {
            serialized.push(format!("{section}.{field}"));
        }
    }
    serialized.sort();
    let mut known: Vec<String> = Config::default().keys().to_vec();
    known.sort();
    assert_eq!(serialized, known);
}

#[test]
fn every_key_round_trips_through_an_override() {
    // The effective value of each key, fed back as an override, loads to the same config.
    let base = Config::load(&LoadOptions {
        overrides: overrides(&[
            ("database.url", "sqlite:x.db"),
            ("youtube.api_key", "k"),
            ("worker.region", "US"),
        ]),
        ..LoadOptions::default()
    })
    .unwrap();
    for e in base.effective().entries {
        let text = match &e.value {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) if s == REDACTED => continue,
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        let r = load_flags(&[(e.key.as_str(), text.as_str())]);
        assert!(r.is_ok(), "{} = {text}: {:?}", e.key, r.err());
    }
}

#[test]
fn a_database_url_password_is_redacted_in_the_dump_and_debug() {
    let c = load_flags(&[(
        "database.url",
        "postgres://app:s3cr3t-canary@db.internal/prismq",
    )])
    .unwrap();
    assert_eq!(
        c.database.postgres_url(),
        Some("postgres://app:s3cr3t-canary@db.internal/prismq")
    );
    let dump = serde_json::to_string(&c.effective()).unwrap();
    let text = c.effective().to_string();
    let debug = format!("{c:?}");
    for shown in [&dump, &text, &debug] {
        assert!(!shown.contains("s3cr3t-canary"), "{shown}");
    }
    assert!(
        text.contains("postgres://app:<redacted>@db.internal/prismq"),
        "{text}"
    );
}

#[test]
fn the_page_size_of_a_new_file_is_a_power_of_two_sqlite_accepts() {
    assert_eq!(Config::default().database.page_size, 2048);
    let c = load_env(&[("PRISMQ_DATABASE__PAGE_SIZE", "1024")]).unwrap();
    assert_eq!(c.database.page_size, 1024);
    let o = crate::storage::sqlite_options(&c).unwrap();
    assert_eq!(o.page_size.get(), 1024);
    for bad in ["1000", "256", "131072", "0", "-1024", "big", "4k"] {
        assert_invalid(
            load_flags(&[("database.page_size", bad)]),
            "database.page_size",
            &format!("{bad:?}"),
            "a power of two from 512 to 65536",
        );
    }
}

#[test]
fn postgres_schema_and_pool_size_are_checked_and_only_for_postgres() {
    const PG: &str = "postgres://prismq@db.internal/prismq";
    let c = load_env(&[
        ("PRISMQ_DATABASE__URL", PG),
        ("PRISMQ_DATABASE__SCHEMA", "team_a"),
        ("PRISMQ_DATABASE__POOL_SIZE", "4"),
    ])
    .unwrap();
    assert_eq!(c.database.schema.as_deref(), Some("team_a"));
    assert_eq!(c.database.pool_size, 4);
    let d = load_env(&[("PRISMQ_DATABASE__URL", PG)]).unwrap();
    assert_eq!((d.database.schema, d.database.pool_size), (None, 16));
    for bad in ["Team", "9lives", "a-b", "", &"x".repeat(64)] {
        assert_invalid(
            load_flags(&[("database.url", PG), ("database.schema", bad)]),
            "database.schema",
            &format!("{bad:?}"),
            "1 to 63 characters of a-z, 0-9 and _",
        );
    }
    for bad in ["0", "1025", "many"] {
        assert_invalid(
            load_flags(&[("database.url", PG), ("database.pool_size", bad)]),
            "database.pool_size",
            &format!("{bad:?}"),
            "an integer from 1 to 1024",
        );
    }
    // A SQLite queue has no schema: setting one is a mistake, named.
    assert_invalid(
        load_flags(&[("database.schema", "team_a")]),
        "database.schema",
        "\"team_a\"",
        "only with a postgres:// database.url",
    );
    assert_eq!(
        load_env(&[("PRISMQ_DATABASE__POOL_SIZE", "4")])
            .unwrap()
            .database
            .pool_size,
        4,
        "unused by SQLite, but not an error: `config show` prints it"
    );
}

#[test]
fn postgres_tls_parameters_are_checked_and_the_password_never_shown() {
    let ok =
        "postgres://app:pw@db.internal/prismq?sslmode=verify-full&sslrootcert=/etc/prismq/ca.pem";
    let c = load_flags(&[("database.url", ok)]).unwrap();
    assert_eq!(c.database.postgres_url(), Some(ok));
    for (url, problem) in [
        (
            "postgres://app:s3cr3t-canary@db/q?sslmode=allow",
            "sslmode=\"allow\" is not known",
        ),
        (
            "postgres://app:s3cr3t-canary@db/q?sslcert=c.pem",
            "sslcert and sslkey go together",
        ),
        (
            "postgres://app:s3cr3t-canary@db/q?sslmode=require&sslmode=disable",
            "given twice",
        ),
        (
            "postgres://app:s3cr3t-canary@db/q?colour=blue",
            "unknown option `colour`",
        ),
    ] {
        let e = load_flags(&[("database.url", url)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`database.url`") && e.contains(problem), "{e}");
        assert!(
            e.contains("verify-ca, verify-full"),
            "says what is accepted: {e}"
        );
        assert!(e.contains("app:<redacted>@db"), "{e}");
        assert!(!e.contains("s3cr3t-canary"), "{e}");
    }
}

#[test]
fn timeouts_used_in_whole_seconds_refuse_fractions_naming_key_value_origin() {
    for key in ["REQUEST_TIMEOUT", "YTDLP_TIMEOUT"] {
        let var = format!("PRISMQ_YOUTUBE__{key}");
        match load_env(&[(var.as_str(), "1500ms")]).unwrap_err() {
            ConfigError::InvalidValue {
                key: k,
                value,
                problem,
                accepted,
                origin,
            } => {
                assert_eq!(k, format!("youtube.{}", key.to_ascii_lowercase()));
                assert_eq!(value, "\"1500ms\"");
                assert_eq!(problem, "not a whole number of seconds");
                assert!(accepted.contains("whole number of seconds"), "{accepted}");
                assert_eq!(origin, Origin::Env(var.clone()));
            }
            e => panic!("{e:?}"),
        }
        let ok = yt(&load_env(&[(var.as_str(), "2000")]).unwrap());
        let set = if key == "REQUEST_TIMEOUT" {
            ok.request_timeout()
        } else {
            ok.ytdlp_timeout()
        };
        assert_eq!(set, Duration::from_secs(2), "{var}=2000 is 2000 ms");
    }
    let d = dirs();
    let p = write(&d.work, FILE_NAME, "[youtube]\nrequest_timeout = 1500\n");
    match Config::load(&opts(&d)).unwrap_err() {
        ConfigError::InvalidValue { key, origin, .. } => {
            assert_eq!(key, "youtube.request_timeout");
            assert_eq!(origin, Origin::File(p));
        }
        e => panic!("{e:?}"),
    }
    let c = load_env(&[("PRISMQ_YOUTUBE__REQUEST_TIMEOUT", "1m30s")]).unwrap();
    assert_eq!(yt(&c).request_timeout(), Duration::from_secs(90));
}

#[test]
fn a_variable_of_ours_that_is_not_utf8_is_refused_by_name() {
    for var in [
        "PRISMQ_WORKER__LEASE",
        "PRISMQ_CONFIG",
        "PRISMQ_QUEUE_DB_PATH",
        "YOUTUBE_API_KEY",
    ] {
        let o = LoadOptions {
            non_utf8_env: vec!["LANG".into(), var.into()],
            ..LoadOptions::default()
        };
        match Config::load(&o).unwrap_err() {
            e @ ConfigError::NotUtf8 { .. } => {
                assert_eq!(e, ConfigError::NotUtf8 { var: var.into() });
                let text = e.to_string();
                assert!(
                    text.contains(var) && text.contains("not valid UTF-8"),
                    "{text}"
                );
            }
            e => panic!("{var}: {e:?}"),
        }
    }
    // Somebody else's variable is none of our business.
    let o = LoadOptions {
        non_utf8_env: vec!["LANG".into(), "OTHER_TOOL_KEY".into()],
        ..LoadOptions::default()
    };
    assert!(Config::load(&o).is_ok());
}

#[cfg(unix)]
#[test]
fn the_process_environment_is_split_into_utf8_and_the_names_of_the_rest() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let vars = vec![
        (OsStr::new("A").to_owned(), OsStr::new("1").to_owned()),
        (
            OsStr::new("PRISMQ_WORKER__REGION").to_owned(),
            OsStr::from_bytes(b"G\xffB").to_owned(),
        ),
        (
            OsStr::from_bytes(b"PRISMQ_\xfe").to_owned(),
            OsStr::new("x").to_owned(),
        ),
    ];
    let (env, bad) = super::loader::split_env(vars.into_iter());
    assert_eq!(env.len(), 1);
    assert_eq!(env["A"], "1");
    assert_eq!(bad, vec!["PRISMQ_WORKER__REGION", "PRISMQ_\u{FFFD}"]);
}

#[test]
fn a_file_over_the_cap_is_refused_naming_file_and_cap() {
    let d = dirs();
    let mut text = String::from("[worker]\nconcurrency = 2\n");
    text.push_str(&"# padding\n".repeat(110_000));
    let p = write(&d.work, "big.toml", &text);
    let mut o = opts(&d);
    o.config_file = Some(p.clone());
    match Config::load(&o).unwrap_err() {
        e @ ConfigError::File { .. } => {
            let msg = e.to_string();
            assert!(msg.contains(&p.display().to_string()), "{msg}");
            assert!(msg.contains("1048576 bytes (1 MiB)"), "{msg}");
        }
        e => panic!("{e:?}"),
    }
    // At the cap it is read.
    let mut text = String::from("[worker]\nconcurrency = 2\n");
    let pad = usize::try_from(MAX_FILE_BYTES).unwrap() - text.len();
    text.push_str(&format!("#{}\n", "x".repeat(pad - 2)));
    assert_eq!(text.len() as u64, MAX_FILE_BYTES);
    std::fs::write(&p, text).unwrap();
    assert_eq!(Config::load(&o).unwrap().worker.concurrency, 2);
}

#[cfg(unix)]
#[test]
fn endless_and_odd_files_are_read_bounded() {
    let d = dirs();
    let mut o = opts(&d);
    o.config_file = Some(PathBuf::from("/dev/zero"));
    let start = std::time::Instant::now();
    match Config::load(&o).unwrap_err() {
        ConfigError::File { path, reason } => {
            assert_eq!(path, PathBuf::from("/dev/zero"));
            assert!(reason.contains("1 MiB"), "{reason}");
        }
        e => panic!("{e:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    // /dev/null is an empty configuration, as before.
    o.config_file = Some(PathBuf::from("/dev/null"));
    assert!(Config::load(&o).is_ok());
    o.config_file = Some(d.work.clone());
    match Config::load(&o).unwrap_err() {
        ConfigError::File { reason, .. } => assert!(reason.contains("directory"), "{reason}"),
        e => panic!("{e:?}"),
    }
    let p = d.work.join("latin1.toml");
    std::fs::write(&p, b"[worker]\nregion = \"\xe9\"\n").unwrap();
    o.config_file = Some(p);
    match Config::load(&o).unwrap_err() {
        ConfigError::File { reason, .. } => {
            assert!(reason.contains("byte 19 is not UTF-8"), "{reason}")
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn ideas_section_sets_the_outlier_settings_and_refuses_bad_values() {
    let c = Config::load(&LoadOptions::default()).unwrap();
    assert_eq!(
        c.ideas.settings(),
        prismq_domain::outlier::OutlierSettings::default()
    );
    let c = load_env(&[
        ("PRISMQ_IDEAS__WINDOW", "50"),
        ("PRISMQ_IDEAS__MIN_SAMPLE", "20"),
        ("PRISMQ_IDEAS__BASELINE_MIN_AGE_DAYS", "3"),
        ("PRISMQ_IDEAS__SCORE_MIN_AGE_DAYS", "14"),
        ("PRISMQ_IDEAS__GROWTH_MIN_SPAN_MINUTES", "90"),
    ])
    .unwrap();
    assert_eq!(
        c.ideas.settings(),
        prismq_domain::outlier::OutlierSettings {
            window: 50,
            baseline_min_age_days: 3,
            min_sample: 20,
            score_min_age_days: 14,
            growth_min_span_minutes: 90,
        }
    );
    assert_eq!(
        c.origin("ideas.window"),
        Origin::Env("PRISMQ_IDEAS__WINDOW".into())
    );
    assert_invalid(
        load_flags(&[("ideas.window", "0")]),
        "ideas.window",
        "\"0\"",
        "1 to 1000",
    );
    assert_invalid(
        load_flags(&[("ideas.min_sample", "40")]),
        "ideas.min_sample",
        "40",
        "ideas.window (30)",
    );
    assert_invalid(
        load_flags(&[("ideas.score_min_age_days", "-1")]),
        "ideas.score_min_age_days",
        "\"-1\"",
        "0 to 3650",
    );
    assert_invalid(
        load_flags(&[("ideas.growth_min_span_minutes", "0")]),
        "ideas.growth_min_span_minutes",
        "\"0\"",
        "1 to 1440",
    );
}

#[test]
fn server_section_sets_serve_options_and_refuses_bad_values() {
    let c = Config::load(&LoadOptions::default()).unwrap();
    assert_eq!(c.server, ServerConfig::default());
    assert_eq!(
        c.server.bind,
        DEFAULT_SERVER_BIND.parse::<std::net::SocketAddr>().unwrap()
    );
    let d = dirs();
    write(
        &d.work,
        FILE_NAME,
        "[server]\nbind = \"[::1]:9000\"\ntls_cert = \"/etc/prismq/fullchain.pem\"\ntls_key = \"/etc/prismq/privkey.pem\"\nbody_limit = 65536\nrequest_timeout = \"10s\"\n",
    );
    let c = Config::load(&opts(&d)).unwrap();
    assert_eq!(c.server.bind, "[::1]:9000".parse().unwrap());
    assert_eq!(
        c.server.tls_cert,
        Some(PathBuf::from("/etc/prismq/fullchain.pem"))
    );
    assert_eq!(
        c.server.tls_key,
        Some(PathBuf::from("/etc/prismq/privkey.pem"))
    );
    assert_eq!(c.server.body_limit, 65_536);
    assert_eq!(c.server.request_timeout, Duration::from_secs(10));
    let c = load_env(&[("PRISMQ_SERVER__BODY_LIMIT", "8388608")]).unwrap();
    assert_eq!(c.server.body_limit, 8 * 1024 * 1024);
    assert_eq!(
        c.origin("server.body_limit"),
        Origin::Env("PRISMQ_SERVER__BODY_LIMIT".into())
    );

    assert_invalid(
        load_flags(&[("server.bind", "0.0.0.0")]),
        "server.bind",
        "\"0.0.0.0\"",
        "IP:PORT",
    );
    assert_invalid(
        load_flags(&[("server.body_limit", "0")]),
        "server.body_limit",
        "\"0\"",
        "1024 to 1073741824",
    );
    assert_invalid(
        load_flags(&[("server.request_timeout", "1s")]),
        "server.request_timeout",
        "\"1s\"",
        "3s",
    );
    assert_invalid(
        load_flags(&[("server.tls_cert", "cert.pem")]),
        "server.tls_cert",
        "\"cert.pem\"",
        "server.tls_cert and server.tls_key together",
    );
    assert_invalid(
        load_flags(&[("server.tls_key", "key.pem")]),
        "server.tls_key",
        "\"key.pem\"",
        "or neither",
    );
    assert_invalid(
        load_flags(&[("server.tls_key", "")]),
        "server.tls_key",
        "\"\"",
        "a path to a PEM file",
    );
}
