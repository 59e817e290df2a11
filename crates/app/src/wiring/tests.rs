//! Tests of the composition root: enqueue validation through the registry, plugin list
//! errors, and opening a real SQLite file.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use prismq_domain::{
    Registrar, Task, TaskContext, TaskError, TaskHandler, TaskResult, TaskStatus, TaskType,
};
use prismq_testkit::{FakeClock, MemoryStore};

use super::*;
use crate::config::LoadOptions;
use prismq_domain::ports::StorageError;
use prismq_domain::settings::Section;
use prismq_domain::Plugin;
use prismq_storage_sqlite::StoreError;

/// Whether `e` is the SQLite adapter's error that `is` accepts.
fn sqlite_error(e: &StorageError, is: impl Fn(&StoreError) -> bool) -> bool {
    match e {
        StorageError::Engine { error, .. } => error.downcast_ref::<StoreError>().is_some_and(is),
        _ => false,
    }
}

struct Echo;

#[async_trait]
impl TaskHandler for Echo {
    fn task_type(&self) -> TaskType {
        TaskType::new("echo").unwrap()
    }
    fn validate(&self, params: &Map<String, Value>) -> Result<(), ValidationError> {
        match params.get("text") {
            Some(Value::String(_)) => Ok(()),
            _ => Err(ValidationError::new("text", "missing", "a string")),
        }
    }
    async fn handle(&self, _: &Task, _: &TaskContext) -> Result<TaskResult, TaskError> {
        Ok(TaskResult {
            summary: "echoed".into(),
            ..TaskResult::default()
        })
    }
}

/// A plugin that registers [`Echo`], under a name of its own.
struct EchoPlugin(&'static str);

impl Plugin for EchoPlugin {
    fn name(&self) -> &'static str {
        self.0
    }
    fn register(
        &self,
        r: &mut dyn Registrar,
        _: &Section,
        _: &PluginContext,
    ) -> Result<(), ValidationError> {
        r.add(Arc::new(Echo))
    }
}

static ECHO: EchoPlugin = EchoPlugin("echo");
static ECHO_AGAIN: EchoPlugin = EchoPlugin("echo_again");

fn memory_app() -> App {
    let clock = Arc::new(FakeClock::default());
    let store = MemoryStore::new(clock.clone(), prismq_domain::RetryPolicy::default());
    let mut registry = PluginRegistry::new();
    registry.add(Arc::new(Echo)).unwrap();
    App::from_parts(
        Ports::from_store(store),
        clock,
        Arc::new(registry),
        Config::default(),
    )
}

fn echo(params: Value) -> NewTask {
    NewTask::new(TaskType::new("echo").unwrap(), params)
}

fn invalid_field(e: PortError) -> String {
    match e {
        PortError::Invalid(v) => v.field,
        e => panic!("{e:?}"),
    }
}

#[tokio::test]
async fn enqueue_validates_through_the_registry() {
    let app = memory_app();
    let e = app
        .enqueue(NewTask::new(TaskType::new("nope").unwrap(), json!({})))
        .await
        .unwrap_err();
    assert_eq!(invalid_field(e), "type");
    let e = app.enqueue(echo(json!({"text": 1}))).await.unwrap_err();
    assert_eq!(invalid_field(e), "params.text");
    let ok = app.enqueue(echo(json!({"text": "hi"}))).await.unwrap();
    assert_eq!(
        app.queue.get(ok.id).await.unwrap().status,
        TaskStatus::Queued
    );

    let e = app
        .enqueue_batch(vec![echo(json!({"text": "a"})), echo(json!({}))])
        .await
        .unwrap_err();
    assert_eq!(invalid_field(e), "tasks[1].params.text");
    let stats = app.queue.stats().await.unwrap();
    assert_eq!(
        stats.total(TaskStatus::Queued),
        1,
        "nothing from the refused batch"
    );
}

#[tokio::test(start_paused = true)]
async fn work_drains_with_configured_settings() {
    let mut app = memory_app();
    app.config.worker.concurrency = 2;
    let id = app.enqueue(echo(json!({"text": "hi"}))).await.unwrap().id;
    let report = app
        .work(
            RunOptions {
                drain: true,
                max_tasks: None,
            },
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(report.completed, 1);
    let task = app.queue.get(id).await.unwrap();
    assert_eq!(task.summary.unwrap()["summary"], "echoed");
}

fn sqlite_config(dir: &tempfile::TempDir) -> Config {
    Config::load(&LoadOptions {
        overrides: vec![
            (
                "database.path".into(),
                dir.path().join("q.db").display().to_string(),
            ),
            ("database.synchronous".into(), "full".into()),
        ],
        ..LoadOptions::default()
    })
    .unwrap()
}

#[tokio::test]
async fn opens_sqlite_with_an_explicit_plugin_list() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = sqlite_config(&dir);
    config.ideas.window = 77;
    let o = sqlite_options(&config).unwrap();
    assert_eq!(o.path, dir.path().join("q.db"));
    assert_eq!(o.synchronous, prismq_storage_sqlite::Synchronous::Full);
    assert_eq!(o.retry, config.retry.policy());
    assert_eq!(o.outlier.window, 77, "[ideas] reaches the store");
    config.ideas.min_sample = 12;
    let pg = postgres_options("postgres://u@127.0.0.1/db", &config);
    assert_eq!((pg.outlier.window, pg.outlier.min_sample), (77, 12));

    let plugins: [PluginEntry; 1] = [&ECHO];
    let app = App::open_with(config.clone(), &plugins).unwrap();
    let id = app.enqueue(echo(json!({"text": "x"}))).await.unwrap().id;
    assert_eq!(app.queue.get(id).await.unwrap().task_type.as_str(), "echo");

    // Registering the same type twice names the plugin.
    let twice: [PluginEntry; 2] = [&ECHO, &ECHO_AGAIN];
    match App::open_with(config, &twice).unwrap_err() {
        AppError::Plugin { plugin, source } => {
            assert_eq!(plugin, "echo_again");
            assert_eq!(source.field, "type");
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn opens_with_the_youtube_plugin_when_a_key_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = sqlite_config(&dir);
    config
        .set_plugin_setting("youtube.api_key", "AIzaTestKey")
        .unwrap();
    let app = App::open(config).unwrap();
    let types: Vec<String> = app
        .registry
        .task_types()
        .iter()
        .map(ToString::to_string)
        .collect();
    for t in [
        "api_scrape",
        "channel_scrape",
        "keyword_search",
        "trending_scrape",
    ] {
        assert!(types.contains(&t.to_owned()), "{types:?}");
    }
}

#[test]
fn a_store_error_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = sqlite_config(&dir);
    config.database.path = Some(dir.path().to_path_buf()); // a directory
    assert!(matches!(
        App::open_with(config, &[]).unwrap_err(),
        AppError::Store(_)
    ));
}

#[test]
fn without_a_key_the_youtube_plugin_decides() {
    // Records today's behaviour of prismq-plugins without an API key (backend auto → yt-dlp).
    let dir = tempfile::tempdir().unwrap();
    match App::open(sqlite_config(&dir)) {
        Ok(app) => assert!(!app.registry.is_empty()),
        Err(AppError::Plugin { plugin, source }) => {
            assert_eq!(plugin, "youtube");
            eprintln!("youtube plugin refused: {source}");
        }
        Err(e) => panic!("{e:?}"),
    }
}

#[tokio::test]
async fn a_postgres_url_selects_the_postgres_adapter() {
    let mut config = Config::default();
    // Nothing listens on port 1: the adapter is built (lazily) and its first use says the
    // server cannot be reached, which only the PostgreSQL adapter would say.
    config.database.url = Some("postgres://prismq@127.0.0.1:1/prismq".into());
    let app = App::open_with(config, &[]).expect("built without connecting");
    match app.queue.stats().await {
        Err(PortError::Unavailable(msg)) => assert!(msg.contains("PostgreSQL"), "{msg}"),
        other => panic!("expected Unavailable from PostgreSQL, got {other:?}"),
    }
    let mut bad = Config::default();
    bad.database.url = Some("postgres://x:notaport/db".into());
    assert!(matches!(
        App::open_with(bad, &[]),
        Err(AppError::Store(StorageError::Port(PortError::Unavailable(
            _
        ))))
    ));
}

#[test]
fn access_decides_what_opening_may_create_or_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let config = sqlite_config(&dir);
    let db = dir.path().join("q.db");
    for access in [Access::Read, Access::Existing] {
        match App::open_for(config.clone(), &[], access) {
            Err(AppError::Store(e))
                if sqlite_error(&e, |s| matches!(s, StoreError::Missing { .. })) => {}
            other => panic!("{access:?}: {other:?}"),
        }
        assert!(!db.exists(), "{access:?} created the file");
    }
    App::open_for(config.clone(), &[], Access::Create).unwrap();
    let store = prismq_storage_sqlite::SqliteStore::open(
        sqlite_options(&config).unwrap(),
        Arc::new(SystemClock),
    )
    .unwrap();
    store.migrate_down(1).unwrap();
    drop(store);
    match App::open_for(config.clone(), &[], Access::Read) {
        Err(AppError::Store(e))
            if sqlite_error(&e, |s| {
                matches!(s, StoreError::SchemaTooOld { found: 1, .. })
            }) => {}
        other => panic!("{other:?}"),
    }
    App::open_for(config.clone(), &[], Access::Existing).unwrap();
    App::open_for(config, &[], Access::Read).unwrap();
}
