//! A server on 127.0.0.1:0 over a temporary SQLite file, a client that checks every answer
//! against the server's own OpenAPI document, and keys made straight in the store.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use prismq_app::{App, Config, LoadOptions};
use prismq_domain::ports::{NewApiKey, Scope};
use prismq_server::ServerOptions;

/// A running server and what it runs on.
pub struct Server {
    pub app: App,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub spec: Value,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<Result<(), prismq_server::ServerError>>>,
    _dir: tempfile::TempDir,
}

/// An answer: status, headers and the body as JSON (Null when it is not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub json: Value,
    pub text: String,
}

impl Answer {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or_default()
    }
}

impl Server {
    pub async fn start() -> Server {
        Server::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut ServerOptions)) -> Server {
        Server::start_on(Vec::new(), adjust).await
    }

    /// A server over a temporary SQLite file whose options come from the configuration
    /// `settings` (`server.body_limit`, …), as `prismq serve` makes them; on 127.0.0.1:0.
    pub async fn start_configured(settings: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut overrides = vec![(
            "database.path".to_owned(),
            dir.path().join("queue.db").display().to_string(),
        )];
        overrides.extend(
            settings
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Server::start_in(dir, overrides, |_| {}).await
    }

    /// A server over a fresh schema on the PostgreSQL test server (`source
    /// scripts/services/postgres.sh` first: without it the test fails, never passes).
    pub async fn start_postgres() -> Server {
        let url = match std::env::var("PRISMQ_TEST_POSTGRES_URL") {
            Ok(u) if !u.trim().is_empty() => u,
            _ => panic!("PRISMQ_TEST_POSTGRES_URL is not set: run `source scripts/services/postgres.sh` first (scripts/check.sh does)"),
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let schema = format!("t_serve_{}_{nanos}", std::process::id());
        Server::start_on(
            vec![
                ("database.url".into(), url),
                ("database.schema".into(), schema),
            ],
            |_| {},
        )
        .await
    }

    async fn start_on(
        extra: Vec<(String, String)>,
        adjust: impl FnOnce(&mut ServerOptions),
    ) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let overrides = if extra.is_empty() {
            vec![(
                "database.path".into(),
                dir.path().join("queue.db").display().to_string(),
            )]
        } else {
            extra
        };
        Server::start_in(dir, overrides, adjust).await
    }

    async fn start_in(
        dir: tempfile::TempDir,
        overrides: Vec<(String, String)>,
        adjust: impl FnOnce(&mut ServerOptions),
    ) -> Server {
        let load = LoadOptions {
            platform_config_dir: None,
            working_dir: Some(dir.path().to_path_buf()),
            config_file: None,
            env: BTreeMap::new(),
            non_utf8_env: Vec::new(),
            overrides,
        };
        let config = Config::load(&load).unwrap();
        let app = App::open(config).unwrap();
        let mut options = ServerOptions::from_config(&app.config.server);
        options.bind = "127.0.0.1:0".parse().unwrap();
        adjust(&mut options);
        let shutdown = CancellationToken::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let handle = tokio::spawn(prismq_server::serve(
            app.clone(),
            options,
            shutdown.clone(),
            move |a| {
                let _ = tx.send(a);
            },
        ));
        let addr = rx.await.expect("the server listens");
        let client = reqwest::Client::new();
        let spec = openapi();
        Server {
            app,
            addr,
            client,
            spec,
            shutdown,
            handle: Some(handle),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A key with `scopes` and `rate` requests a minute, made in the store; its secret.
    pub async fn key(&self, scopes: &[Scope], rate: u32) -> String {
        let secret = prismq_server::secret::generate();
        self.app
            .keys
            .create(NewApiKey::for_secret(&secret, "test", scopes.to_vec(), rate).unwrap())
            .await
            .unwrap();
        secret
    }

    /// Sends `req`, reads the answer and checks it against the OpenAPI document under
    /// `route` (the path template).
    pub async fn send(&self, route: &str, req: reqwest::RequestBuilder) -> Answer {
        let built = req.build().unwrap();
        let method = built.method().as_str().to_lowercase();
        let r = self.client.execute(built).await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        let a = Answer {
            status,
            headers,
            json,
            text,
        };
        conforms(&self.spec, route, &method, &a);
        a
    }

    pub async fn get(&self, key: &str, route: &str, path: &str) -> Answer {
        self.send(route, self.client.get(self.url(path)).bearer_auth(key))
            .await
    }

    pub async fn post(&self, key: &str, route: &str, path: &str, body: &str) -> Answer {
        self.send(
            route,
            self.client
                .post(self.url(path))
                .bearer_auth(key)
                .header("content-type", "application/json")
                .body(body.to_owned()),
        )
        .await
    }

    /// How many tasks the store holds.
    pub async fn task_count(&self) -> u64 {
        self.app
            .queue
            .stats()
            .await
            .unwrap()
            .counts
            .iter()
            .map(|c| c.count)
            .sum()
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }
}

/// The OpenAPI document as the server serves it.
fn openapi() -> Value {
    serde_json::to_value(<prismq_server::api::ApiDoc as utoipa::OpenApi>::openapi()).unwrap()
}

/// Resolves a `$ref` into the document.
fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap_or_default();
            &spec["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// The answer's status is documented for the route and method, and a JSON body has the
/// documented object's required properties and no undocumented ones (one level deep, and
/// into the error body's `error`).
pub fn conforms(spec: &Value, route: &str, method: &str, a: &Answer) {
    let op = &spec["paths"][route][method];
    assert!(
        op.is_object(),
        "{method} {route} is not in the OpenAPI document"
    );
    let resp = &op["responses"][a.status.to_string()];
    assert!(
        resp.is_object(),
        "{method} {route} answered {} which the OpenAPI document does not list: {}",
        a.status,
        a.text
    );
    let Some(schema) = resp["content"]["application/json"].get("schema") else {
        return;
    };
    let schema = resolve(spec, schema);
    check_object(
        spec,
        schema,
        &a.json,
        &format!("{method} {route} {}", a.status),
    );
}

fn check_object(spec: &Value, schema: &Value, value: &Value, at: &str) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    let obj = value
        .as_object()
        .unwrap_or_else(|| panic!("{at}: expected an object, got {value}"));
    for req in schema["required"].as_array().into_iter().flatten() {
        let name = req.as_str().unwrap();
        assert!(
            obj.contains_key(name),
            "{at}: missing required {name}: {value}"
        );
    }
    for (k, v) in obj {
        let p = props
            .get(k)
            .unwrap_or_else(|| panic!("{at}: property {k} is not documented"));
        let p = resolve(spec, p);
        if p.get("properties").is_some() && v.is_object() {
            check_object(spec, p, v, &format!("{at}.{k}"));
        }
    }
}
