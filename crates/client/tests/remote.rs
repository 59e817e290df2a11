//! `RemoteStore` against a real `prismq serve` on 127.0.0.1 over a real SQLite file: HTTPS
//! with a self-signed certificate (made here with the system's `openssl`) trusted through a
//! CA file, and refused without it; follow-up tasks enqueued over the API with a key that
//! may, refused clearly otherwise, through the ports and through the unchanged runtime; a
//! worker keeping tasks ahead never holds tasks or completions while a claim waits for work.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use tokio_util::sync::CancellationToken;

use prismq_app::{App, Config, LoadOptions};
use prismq_client::{ApiKeySecret, ClientError, RemoteOptions, RemoteStore, TrustedCa};
use prismq_domain::ports::{NewApiKey, Scope};
use prismq_server::tls::TlsFiles;
use prismq_server::ServerOptions;

/// A server on 127.0.0.1:0 over a fresh SQLite file in `dir`.
struct Served {
    app: App,
    addr: SocketAddr,
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<Result<(), prismq_server::ServerError>>,
}

impl Served {
    async fn start(dir: &Path, tls: Option<TlsFiles>) -> Served {
        let load = LoadOptions {
            platform_config_dir: None,
            working_dir: Some(dir.to_path_buf()),
            config_file: None,
            env: BTreeMap::new(),
            non_utf8_env: Vec::new(),
            overrides: vec![(
                "database.path".into(),
                dir.join("queue.db").display().to_string(),
            )],
        };
        let app = App::open(Config::load(&load).unwrap()).unwrap();
        let mut options = ServerOptions::new("127.0.0.1:0".parse().unwrap());
        options.tls = tls;
        let stop = CancellationToken::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let handle = tokio::spawn(prismq_server::serve(
            app.clone(),
            options,
            stop.clone(),
            move |a| {
                let _ = tx.send(a);
            },
        ));
        let addr = rx.await.unwrap();
        Served {
            app,
            addr,
            stop,
            handle,
        }
    }

    /// A key with `scopes`, made in the store.
    async fn key(&self, scopes: &[Scope]) -> ApiKeySecret {
        let secret = prismq_server::secret::generate();
        self.app
            .keys
            .create(NewApiKey::for_secret(&secret, "test", scopes.to_vec(), 100_000).unwrap())
            .await
            .unwrap();
        ApiKeySecret::new(&secret).unwrap()
    }

    async fn stop(self) {
        self.stop.cancel();
        self.handle.await.unwrap().unwrap();
    }
}

/// A self-signed certificate for 127.0.0.1 (not a CA: the server's own, trusted as is).
fn self_signed(dir: &Path) -> TlsFiles {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
        ])
        .output()
        .expect("openssl (installed by scripts/services/postgres.sh) makes the test certificate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_self_signed_certificate_trusted_through_a_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let files = self_signed(dir.path());
    let s = Served::start(dir.path(), Some(files.clone())).await;
    let key = s.key(&[Scope::Work]).await;
    let url = format!("https://127.0.0.1:{}", s.addr.port());

    // Without the CA file: the bundled web roots do not know the certificate.
    let mut plain = RemoteOptions::new(&url, key.clone()).unwrap();
    plain.retry_for = std::time::Duration::ZERO;
    let refused = RemoteStore::new(plain).unwrap().check().await.unwrap_err();
    // A TLS refusal, not a server that is not up yet: trying again cannot help.
    match &refused {
        ClientError::Untrusted { message, .. } => {
            assert!(message.contains("certificate"), "{message}")
        }
        e => panic!("{e:?}"),
    }
    assert!(refused.to_string().contains("--ca-cert"), "{refused}");

    // With it: served, and a worker's calls go through.
    let mut trusted = RemoteOptions::new(&url, key).unwrap();
    trusted.ca = Some(TrustedCa::read(&files.cert).unwrap());
    let store = RemoteStore::new(trusted).unwrap();
    store.check().await.unwrap();
    use prismq_domain::ports::QuotaLedger;
    assert!(store.usage().await.unwrap().is_empty());
    s.stop().await;
}

#[test]
fn a_ca_file_that_cannot_be_used_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let e = TrustedCa::read(&missing).unwrap_err();
    assert_eq!(e.field, "ca cert");
    assert!(e.problem.contains("missing.pem"), "{e}");
    assert!(e.accepted.contains("CERTIFICATE"), "{e}");

    let key_only = dir.path().join("key.pem");
    std::fs::write(
        &key_only,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let e = TrustedCa::read(&key_only).unwrap_err();
    assert!(e.problem.contains("no CERTIFICATE block"), "{e}");

    let huge = dir.path().join("huge.pem");
    std::fs::write(&huge, vec![b'a'; 2 * 1024 * 1024]).unwrap();
    let e = TrustedCa::read(&huge).unwrap_err();
    assert!(e.problem.contains("larger than 1 MiB"), "{e}");
}

/// Follow-up tasks go to `POST /v1/tasks` with the worker's key: refused with a clear
/// message for a `work`-only key, enqueued (and deduplicated by their idempotency key) for a
/// key that may enqueue; the channel baselines the runtime checks first are read over the
/// API too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ups_are_enqueued_with_a_key_that_may_and_refused_clearly_otherwise() {
    use prismq_domain::ports::{ResultStore, TaskQueue};
    use prismq_domain::{NewTask, PortError, TaskType};

    let dir = tempfile::tempdir().unwrap();
    let s = Served::start(dir.path(), None).await;
    let url = format!("http://{}", s.addr);
    let work_only =
        RemoteStore::new(RemoteOptions::new(&url, s.key(&[Scope::Work]).await).unwrap()).unwrap();
    let both = RemoteStore::new(
        RemoteOptions::new(&url, s.key(&[Scope::Work, Scope::Enqueue]).await).unwrap(),
    )
    .unwrap();
    let mut follow_up = NewTask::new(
        TaskType::new("channel_scrape").unwrap(),
        serde_json::json!({"channel_url": "@veritasium", "top_n": 30}),
    );
    follow_up.idempotency_key = Some("baseline:UCHnyfMqiRRG1u-2MsSQLbXA:videos:2026-12-03".into());
    follow_up.max_attempts = Some(4);

    match work_only.enqueue(follow_up.clone()).await.unwrap_err() {
        PortError::Invalid(v) => {
            assert_eq!(v.field, "api key");
            assert!(v.problem.contains("follow-up"), "{v}");
            assert!(v.problem.contains("enqueue"), "{v}");
            assert!(v.accepted.contains("--scope work,enqueue"), "{v}");
        }
        e => panic!("{e:?}"),
    }
    assert!(s
        .app
        .queue
        .list(&Default::default())
        .await
        .unwrap()
        .is_empty());

    let first = both.enqueue(follow_up.clone()).await.unwrap();
    assert!(!first.duplicate);
    let again = both.enqueue(follow_up).await.unwrap();
    assert_eq!(again.id, first.id);
    assert!(again.duplicate);
    let task = s.app.queue.get(first.id).await.unwrap();
    assert_eq!(task.task_type.as_str(), "channel_scrape");
    assert_eq!(task.params["top_n"], 30);
    assert_eq!(task.max_attempts, 4);

    assert!(both
        .baselines("UCHnyfMqiRRG1u-2MsSQLbXA")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        both.baselines("UCHnyfMqiRRG1u-2MsSQLbXA").await.unwrap(),
        s.app
            .results
            .baselines("UCHnyfMqiRRG1u-2MsSQLbXA")
            .await
            .unwrap()
    );
    s.stop().await;
}

/// A handler of `parent` tasks asking for one `child` follow-up, and of `child` tasks.
struct Parent;

#[async_trait::async_trait]
impl prismq_domain::TaskHandler for Parent {
    fn task_type(&self) -> prismq_domain::TaskType {
        prismq_domain::TaskType::new("parent").unwrap()
    }
    fn validate(
        &self,
        _: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), prismq_domain::ValidationError> {
        Ok(())
    }
    async fn handle(
        &self,
        task: &prismq_domain::Task,
        _: &prismq_domain::TaskContext,
    ) -> Result<prismq_domain::TaskResult, prismq_domain::TaskError> {
        let mut child = prismq_domain::NewTask::new(
            prismq_domain::TaskType::new("child").unwrap(),
            serde_json::json!({ "of": task.id.0 }),
        );
        child.idempotency_key = Some(format!("child-of-{}", task.id.0));
        Ok(prismq_domain::TaskResult {
            follow_ups: vec![prismq_domain::FollowUp {
                task: child,
                unless_channel_has_baseline: Some("UCX6OQ3DkcsbYNE6H8uQQuVA".into()),
            }],
            ..prismq_domain::TaskResult::default()
        })
    }
}

struct Child;

#[async_trait::async_trait]
impl prismq_domain::TaskHandler for Child {
    fn task_type(&self) -> prismq_domain::TaskType {
        prismq_domain::TaskType::new("child").unwrap()
    }
    fn validate(
        &self,
        _: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), prismq_domain::ValidationError> {
        Ok(())
    }
    async fn handle(
        &self,
        _: &prismq_domain::Task,
        _: &prismq_domain::TaskContext,
    ) -> Result<prismq_domain::TaskResult, prismq_domain::TaskError> {
        Ok(prismq_domain::TaskResult::default())
    }
}

/// The unchanged runtime on `RemoteStore` ports: a task's follow-up is checked against the
/// channel's baselines and enqueued over the API when the key may enqueue; with a
/// `work`-only key it is refused, noted in the task's log, and the task still completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_runtime_enqueues_follow_ups_when_its_key_may() {
    use std::sync::Arc;

    use prismq_app::{PluginRegistry, Ports, RunOptions, Runtime, WorkerSettings};
    use prismq_domain::Registrar;
    use prismq_domain::{NewTask, TaskStatus, TaskType};
    use prismq_storage_sqlite::{SqliteOptions, SqliteStore};

    let registry = || {
        let mut r = PluginRegistry::new();
        r.add(Arc::new(Parent)).unwrap();
        r.add(Arc::new(Child)).unwrap();
        Arc::new(r)
    };
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        SqliteOptions::new(dir.path().join("queue.db")),
        Arc::new(prismq_domain::ports::SystemClock),
    )
    .unwrap();
    let config = Config::load(&LoadOptions {
        working_dir: Some(dir.path().to_path_buf()),
        env: BTreeMap::new(),
        ..LoadOptions::default()
    })
    .unwrap();
    let app = App::from_parts(
        Ports::from_store(store),
        Arc::new(prismq_domain::ports::SystemClock),
        registry(),
        config,
    );
    let stop = CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let handle = tokio::spawn(prismq_server::serve(
        app.clone(),
        ServerOptions::new("127.0.0.1:0".parse().unwrap()),
        stop.clone(),
        move |a| {
            let _ = tx.send(a);
        },
    ));
    let s = Served {
        app,
        addr: rx.await.unwrap(),
        stop,
        handle,
    };
    let url = format!("http://{}", s.addr);
    let run = |key: ApiKeySecret| {
        let mut o = RemoteOptions::new(&url, key).unwrap();
        o.claim_wait = std::time::Duration::ZERO;
        let remote = Arc::new(RemoteStore::new(o).unwrap());
        let runtime = Runtime::new(
            remote.clone(),
            remote.clone(),
            remote.clone(),
            remote,
            registry(),
            WorkerSettings {
                concurrency: 1,
                ..WorkerSettings::default()
            },
        );
        async move {
            runtime
                .run(
                    RunOptions {
                        drain: true,
                        max_tasks: None,
                    },
                    CancellationToken::new(),
                )
                .await
                .unwrap()
        }
    };
    let parent = || NewTask::new(TaskType::new("parent").unwrap(), serde_json::json!({}));

    // A work-only key: the follow-up is refused, the parent completes.
    let first = s.app.queue.enqueue(parent()).await.unwrap().id;
    let report = run(s.key(&[Scope::Work]).await).await;
    assert_eq!(report.completed, 1);
    let done = s.app.queue.get(first).await.unwrap();
    assert_eq!(done.status, TaskStatus::Completed);
    let summary = done.summary.unwrap();
    assert_eq!(summary["follow_ups"]["refused"], 1, "{summary}");
    let log = s.app.logs.list(first).await.unwrap();
    assert!(
        log.iter()
            .any(|e| e.message.contains("follow-up child not enqueued")
                && e.message.contains("--scope work,enqueue")),
        "{log:?}"
    );
    assert_eq!(
        s.app.queue.stats().await.unwrap().counts.len(),
        1,
        "no child"
    );

    // A key that may enqueue: the child is enqueued over the API and run by the same worker.
    let second = s.app.queue.enqueue(parent()).await.unwrap().id;
    let report = run(s.key(&[Scope::Work, Scope::Enqueue]).await).await;
    assert_eq!(report.completed, 2, "the parent and its child");
    let summary = s.app.queue.get(second).await.unwrap().summary.unwrap();
    let child = summary["follow_ups"]["enqueued"][0].as_i64().unwrap();
    let child = s.app.queue.get(prismq_domain::TaskId(child)).await.unwrap();
    assert_eq!(child.task_type.as_str(), "child");
    assert_eq!(child.params["of"], second.0);
    assert_eq!(child.status, TaskStatus::Completed);
    s.stop().await;
}

/// A remote worker keeping tasks ahead: a batch of claims on a short queue answers with what
/// is there instead of waiting the long poll with tasks in hand, and a batch of completions
/// answers once they are written, the claims after them not waiting for work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_never_holds_tasks_or_completions_while_a_claim_waits() {
    use std::time::{Duration, Instant};

    use prismq_domain::ports::{ClaimFilter, ClaimRequest, Handover, TaskQueue};
    use prismq_domain::{ClaimingStrategy, NewTask, TaskStatus, TaskType, WorkerId};

    const WAIT: Duration = Duration::from_secs(6);
    let dir = tempfile::tempdir().unwrap();
    let s = Served::start(dir.path(), None).await;
    let mut o =
        RemoteOptions::new(&format!("http://{}", s.addr), s.key(&[Scope::Work]).await).unwrap();
    o.claim_wait = WAIT;
    let remote = RemoteStore::new(o).unwrap();
    let task = || {
        NewTask::new(
            TaskType::new("api_scrape").unwrap(),
            serde_json::json!({"videos": ["dQw4w9WgXcQ"]}),
        )
    };
    s.app.queue.enqueue(task()).await.unwrap();
    s.app.queue.enqueue(task()).await.unwrap();
    let request = ClaimRequest {
        worker: WorkerId::new("remote-0").unwrap(),
        filter: ClaimFilter::default(),
        strategy: ClaimingStrategy::Fifo,
        lease_for: Duration::from_secs(60),
    };

    let started = Instant::now();
    let held = remote.claim_and_start_many(&request, 8).await.unwrap();
    assert_eq!(held.len(), 2);
    assert!(
        started.elapsed() < WAIT / 2,
        "the batch waited for more work with two tasks in hand: {:?}",
        started.elapsed()
    );

    let items: Vec<Handover> = held
        .iter()
        .map(|c| Handover {
            lease: c.lease.clone(),
            summary: None,
            next: Some(request.clone()),
        })
        .collect();
    // The completions are written, and the claims after them take what is eligible (none
    // here) without waiting for work: the call answers at once, so the worker's metrics count
    // the completions when they are written, and the loop waits for work in its next claim.
    let started = Instant::now();
    let answers = remote.complete_and_claim_many(&items).await.unwrap();
    assert!(
        started.elapsed() < WAIT / 2,
        "the completions waited behind a claim's long poll: {:?}",
        started.elapsed()
    );
    for c in &held {
        assert_eq!(
            s.app.queue.get(c.task.id).await.unwrap().status,
            TaskStatus::Completed
        );
    }
    assert_eq!(answers.len(), 2);
    for a in answers {
        assert!(matches!(a, Ok(Ok(None))), "{a:?}");
    }
    s.stop().await;
}

/// A remote worker keeping tasks ahead claims a batch with one `POST /v1/work/claims` and
/// writes its completions with one `POST /v1/work/completions` (then the next batch's
/// claims with one more), never a request a task: the server's own request counts say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_one_request_for_its_claims_and_one_for_its_completions() {
    use std::time::Duration;

    use prismq_domain::ports::{Handover, TaskQueue};
    use prismq_domain::TaskStatus;

    let dir = tempfile::tempdir().unwrap();
    let s = Served::start(dir.path(), None).await;
    let mut o =
        RemoteOptions::new(&format!("http://{}", s.addr), s.key(&[Scope::Work]).await).unwrap();
    o.claim_wait = Duration::ZERO;
    let remote = RemoteStore::new(o).unwrap();
    assert!(remote.claims_in_batches());
    enqueue_scrapes(&s, 12).await;
    let request = fifo_request();
    let held = remote.claim_and_start_many(&request, 8).await.unwrap();
    assert_eq!(held.len(), 8);
    let items: Vec<Handover> = held
        .iter()
        .map(|c| Handover {
            lease: c.lease.clone(),
            summary: Some(serde_json::json!({"id": c.task.id.0})),
            next: Some(request.clone()),
        })
        .collect();
    let answers = remote.complete_and_claim_many(&items).await.unwrap();
    let next: Vec<_> = answers
        .into_iter()
        .filter_map(|a| a.unwrap().unwrap())
        .collect();
    assert_eq!(next.len(), 4, "the four left");
    for c in &held {
        let t = s.app.queue.get(c.task.id).await.unwrap();
        assert_eq!(t.status, TaskStatus::Completed);
        assert_eq!(t.summary, Some(serde_json::json!({"id": c.task.id.0})));
    }
    for c in &next {
        assert_eq!(
            s.app.queue.get(c.task.id).await.unwrap().status,
            TaskStatus::Running
        );
    }
    // The server's request counts: two batch claims and one batch of completions, nothing
    // one a task.
    let reader = prismq_server::secret::generate();
    s.app
        .keys
        .create(NewApiKey::for_secret(&reader, "metrics", vec![Scope::Read], 1_000).unwrap())
        .await
        .unwrap();
    let metrics = reqwest::Client::new()
        .get(format!("http://{}/metrics", s.addr))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |route: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| l.starts_with("prismq_http_requests_total{"))
            .filter(|l| l.contains(&format!("route=\"{route}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    assert_eq!(count("/v1/work/claims"), 2, "{metrics}");
    assert_eq!(count("/v1/work/completions"), 1, "{metrics}");
    assert_eq!(count("/v1/work/claim"), 0, "{metrics}");
    assert_eq!(count("/v1/work/complete"), 0, "{metrics}");
    s.stop().await;
}

/// Against a server older than the batch endpoints (here a proxy in front of a real server
/// answering them 404, as such a server does, and passing everything else on), a batch's
/// claims and completions go one request a task with the same answers, and the client asks
/// the batch endpoints only once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_a_server_without_batch_endpoints_a_batch_goes_one_request_a_task() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use prismq_domain::ports::{Handover, TaskQueue};
    use prismq_domain::TaskStatus;

    let dir = tempfile::tempdir().unwrap();
    let s = Served::start(dir.path(), None).await;
    let refused = Arc::new(AtomicUsize::new(0));
    let counted = refused.clone();
    let addr = proxy(&s, move |path| {
        if path != "/v1/work/claims" && path != "/v1/work/completions" {
            return None;
        }
        counted.fetch_add(1, Ordering::Relaxed);
        let body = serde_json::json!({"error": {"code": "not_found", "message": "no route", "field": null, "accepted": null}});
        Some((axum::http::StatusCode::NOT_FOUND, body))
    })
    .await;
    let mut o = RemoteOptions::new(&format!("http://{addr}"), s.key(&[Scope::Work]).await).unwrap();
    o.claim_wait = Duration::ZERO;
    let remote = RemoteStore::new(o).unwrap();
    enqueue_scrapes(&s, 5).await;
    let request = fifo_request();
    let held = remote.claim_and_start_many(&request, 3).await.unwrap();
    assert_eq!(held.len(), 3);
    let items: Vec<Handover> = held
        .iter()
        .map(|c| Handover {
            lease: c.lease.clone(),
            summary: None,
            next: Some(request.clone()),
        })
        .collect();
    let answers = remote.complete_and_claim_many(&items).await.unwrap();
    let next: Vec<_> = answers
        .into_iter()
        .filter_map(|a| a.unwrap().unwrap())
        .collect();
    assert_eq!(next.len(), 2, "the two left");
    for c in &held {
        assert_eq!(
            s.app.queue.get(c.task.id).await.unwrap().status,
            TaskStatus::Completed
        );
    }
    assert_eq!(
        refused.load(Ordering::Relaxed),
        1,
        "the batch endpoints were asked once, then no more"
    );
    s.stop().await;
}

/// Enqueues `n` `api_scrape` tasks straight on the server's store.
async fn enqueue_scrapes(s: &Served, n: usize) {
    use prismq_domain::{NewTask, TaskType};
    for i in 0..n {
        s.app
            .queue
            .enqueue(NewTask::new(
                TaskType::new("api_scrape").unwrap(),
                serde_json::json!({"videos": [format!("dQw4w9WgX{i:02}")]}),
            ))
            .await
            .unwrap();
    }
}

/// A FIFO claim of any type by worker `remote-0`, with a minute's lease.
fn fifo_request() -> prismq_domain::ports::ClaimRequest {
    use prismq_domain::ports::{ClaimFilter, ClaimRequest};
    use prismq_domain::{ClaimingStrategy, WorkerId};
    ClaimRequest {
        worker: WorkerId::new("remote-0").unwrap(),
        filter: ClaimFilter::default(),
        strategy: ClaimingStrategy::Fifo,
        lease_for: std::time::Duration::from_secs(60),
    }
}

/// A proxy in front of `s` on 127.0.0.1: a request whose path `intercept` answers gets that
/// status and JSON body, every other is passed on to the server. Its address.
async fn proxy(
    s: &Served,
    intercept: impl Fn(&str) -> Option<(axum::http::StatusCode, serde_json::Value)>
        + Clone
        + Send
        + Sync
        + 'static,
) -> SocketAddr {
    use axum::response::IntoResponse;
    let upstream = format!("http://{}", s.addr);
    let router = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (upstream, intercept) = (upstream.clone(), intercept.clone());
        async move {
            let path = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            if let Some((status, body)) = intercept(&path) {
                return (status, axum::Json(body)).into_response();
            }
            let (method, headers) = (req.method().clone(), req.headers().clone());
            let body = axum::body::to_bytes(req.into_body(), 1 << 20)
                .await
                .unwrap();
            let r = reqwest::Client::new()
                .request(method, format!("{upstream}{path}"))
                .headers(headers)
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status(), r.bytes().await.unwrap()).into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// A server's outcome of one completion in a batch is text from outside: an error message
/// with a terminal escape and 5,000 characters reaches the runtime as one bounded line with
/// no control character, and a lost lease as `LeaseLost` for its own task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_servers_outcome_of_a_completion_is_bounded_and_cleaned() {
    use std::time::Duration;

    use prismq_domain::ports::{Handover, TaskQueue};
    use prismq_domain::PortError;

    let dir = tempfile::tempdir().unwrap();
    let s = Served::start(dir.path(), None).await;
    let hostile = format!("bad\u{1b}[31m\r\nforged line {}", "x".repeat(5_000));
    let message = hostile.clone();
    let addr = proxy(&s, move |path| {
        (path == "/v1/work/completions").then(|| {
            let error = serde_json::json!({"code": "invalid", "message": message, "field": "summary\u{7}", "accepted": "JSON\u{1b}[0m"});
            let lost = serde_json::json!({"code": "lease_lost", "message": "lost", "field": null, "accepted": null});
            (
                axum::http::StatusCode::OK,
                serde_json::json!({"results": [
                    {"completed": false, "status": 422, "error": error},
                    {"completed": false, "status": 409, "error": lost},
                ]}),
            )
        })
    })
    .await;
    let mut o = RemoteOptions::new(&format!("http://{addr}"), s.key(&[Scope::Work]).await).unwrap();
    o.claim_wait = Duration::ZERO;
    let remote = RemoteStore::new(o).unwrap();
    enqueue_scrapes(&s, 2).await;
    let held = remote
        .claim_and_start_many(&fifo_request(), 2)
        .await
        .unwrap();
    assert_eq!(held.len(), 2);
    let items: Vec<Handover> = held
        .iter()
        .map(|c| Handover {
            lease: c.lease.clone(),
            summary: None,
            next: None,
        })
        .collect();
    let answers = remote.complete_and_claim_many(&items).await.unwrap();
    let first = answers[0].clone().unwrap_err().to_string();
    assert!(
        !first.chars().any(char::is_control),
        "a control character came through: {first:?}"
    );
    assert!(first.contains("forged line"), "{first}");
    // Cut to one line's bound (the server sent more than 5,000 characters).
    let n = first.chars().count();
    assert!(
        n <= prismq_domain::text::MESSAGE_MAX_CHARS + 100,
        "not bounded: {n} chars"
    );
    assert_eq!(
        answers[1].clone().unwrap_err(),
        PortError::LeaseLost {
            task_id: held[1].task.id.0
        }
    );
    s.stop().await;
}
