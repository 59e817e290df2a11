//! TLS against the real test server, which speaks TLS with a certificate for DNS:localhost
//! only, signed by a CA the service script made: verify-full and verify-ca, a host name the
//! certificate does not name, an untrusted server, client certificates, the default for this
//! machine, and certificate files that are missing or wrong.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use prismq_domain::ports::{Clock, SystemClock, TaskQueue};
use prismq_domain::task::{NewTask, TaskType};
use prismq_domain::PortError;
use prismq_storage_postgres::{PostgresOptions, PostgresStore, StoreError};
use serde_json::json;

fn tls(file: &str) -> String {
    PathBuf::from(common::service_var("PRISMQ_TEST_POSTGRES_TLS"))
        .join(file)
        .display()
        .to_string()
}

fn url(host: &str, user: &str, query: &str) -> String {
    let port = common::service_var("PRISMQ_TEST_POSTGRES_PORT");
    format!("postgres://{user}@{host}:{port}/prismq_test?{query}")
}

fn options(url: String) -> PostgresOptions {
    let mut o = PostgresOptions::new(url).with_schema(common::fresh_schema("tls"));
    o.pool_size = 2;
    o.connect_timeout = Duration::from_secs(10);
    o
}

async fn open(url: String) -> Result<PostgresStore, StoreError> {
    PostgresStore::open(options(url), Arc::new(SystemClock) as Arc<dyn Clock>).await
}

/// Whether this connection of `store` is encrypted, with the protocol version.
async fn ssl_of(store: &PostgresStore) -> (bool, Option<String>) {
    let c = store.connection().await.expect("a connection");
    let row = c
        .query_one(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl");
    (row.get(0), row.get(1))
}

fn unavailable(e: StoreError) -> String {
    match e {
        StoreError::Port(PortError::Unavailable(m)) => m,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn verify_full_encrypts_every_connection_including_the_listener() {
    let query = format!(
        "sslmode=verify-full&sslrootcert={}&application_name=prismq_tls_full",
        tls("ca.crt")
    );
    let store = open(url("localhost", "prismq", &query)).await.unwrap();
    assert_eq!(ssl_of(&store).await, (true, Some("TLSv1.3".into())));

    // The queue works over it, and the LISTEN connection (made apart from the pool) wakes.
    let mut signal = store.subscribe();
    let t = TaskType::new("channel_scrape").unwrap();
    let mut woke = false;
    for _ in 0..50 {
        store
            .enqueue(NewTask::new(t.clone(), json!({"channel": "UC1"})))
            .await
            .unwrap();
        if signal.wait(Duration::from_millis(200)).await {
            woke = true;
            break;
        }
    }
    assert!(woke, "the listener never reported an enqueue");
    let c = store.connection().await.unwrap();
    let rows = c
        .query(
            "SELECT s.ssl, a.query FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
             WHERE a.application_name = 'prismq_tls_full' AND a.pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    let listeners: Vec<bool> = rows
        .iter()
        .filter(|r| r.get::<_, String>(1).starts_with("LISTEN"))
        .map(|r| r.get(0))
        .collect();
    assert_eq!(listeners, vec![true], "one listener, encrypted: {rows:?}");
}

#[tokio::test]
async fn a_host_the_certificate_does_not_name_fails_verify_full_but_passes_verify_ca() {
    let ca = tls("ca.crt");
    let full = url(
        "127.0.0.1",
        "prismq",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let e = unavailable(open(full).await.unwrap_err());
    assert!(e.contains("invalid peer certificate"), "{e}");
    assert!(
        e.contains("sslrootcert=FILE") && e.contains("verify-ca"),
        "the error says what to do: {e}"
    );

    let ca_only = url(
        "127.0.0.1",
        "prismq",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    );
    let store = open(ca_only).await.unwrap();
    assert!(ssl_of(&store).await.0);
}

#[tokio::test]
async fn a_server_signed_by_an_unknown_ca_is_refused_in_every_mode_that_tries_tls() {
    // Without sslrootcert only the built-in public roots are trusted; the test CA is not one.
    // `require` verifies too, and `prefer` does not fall back to plain text once the
    // server has offered TLS: an unverified server is never used.
    for mode in ["require", "prefer", "verify-full"] {
        let e = unavailable(
            open(url("localhost", "prismq", &format!("sslmode={mode}")))
                .await
                .unwrap_err(),
        );
        assert!(
            e.contains("invalid peer certificate") && e.contains("UnknownIssuer"),
            "{mode}: {e}"
        );
    }
}

#[tokio::test]
async fn this_machine_goes_without_tls_unless_asked() {
    let plain = open(url("127.0.0.1", "prismq", "")).await.unwrap();
    assert_eq!(ssl_of(&plain).await, (false, None));
    let disabled = open(url("localhost", "prismq", "sslmode=disable"))
        .await
        .unwrap();
    assert!(!ssl_of(&disabled).await.0);
    let asked = open(url(
        "localhost",
        "prismq",
        &format!("sslrootcert={}&sslmode=require", tls("ca.crt")),
    ))
    .await
    .unwrap();
    assert!(ssl_of(&asked).await.0);
}

#[tokio::test]
async fn a_client_certificate_logs_in_a_role_that_accepts_nothing_else() {
    let ca = tls("ca.crt");
    let with_cert = url(
        "localhost",
        "prismq_cert",
        &format!(
            "sslmode=verify-full&sslrootcert={ca}&sslcert={}&sslkey={}",
            tls("client.crt"),
            tls("client.key")
        ),
    );
    let store = open(with_cert).await.unwrap();
    let c = store.connection().await.unwrap();
    let me: String = c
        .query_one("SELECT current_user", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(me, "prismq_cert");

    let without = url(
        "localhost",
        "prismq_cert",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let e = unavailable(open(without).await.unwrap_err());
    assert!(e.contains("certificate"), "{e}");
}

#[test]
fn certificate_files_that_are_missing_or_wrong_are_refused_before_connecting() {
    let clock = || Arc::new(SystemClock) as Arc<dyn Clock>;
    let missing = url("localhost", "prismq", "sslrootcert=/nonexistent/ca.pem");
    let e = PostgresStore::connect_lazy(options(missing), clock())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/nonexistent/ca.pem") && e.contains("PEM"),
        "names the file and what it should be: {e}"
    );

    // A key where certificates are expected, and a certificate where the key is.
    let key_as_ca = url(
        "localhost",
        "prismq",
        &format!("sslrootcert={}", tls("client.key")),
    );
    let e = PostgresStore::connect_lazy(options(key_as_ca), clock())
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds no certificate"), "{e}");
    let cert_as_key = url(
        "localhost",
        "prismq",
        &format!("sslcert={}&sslkey={}", tls("client.crt"), tls("client.crt")),
    );
    let e = PostgresStore::connect_lazy(options(cert_as_key), clock())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no usable private key"), "{e}");
}

/// A stand-in server on loopback that refuses TLS the way PostgreSQL does (it answers the
/// 8-byte SSLRequest with `N`) and records what the client sends next.
async fn server_without_tls() -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 8];
        sock.read_exact(&mut request).await.unwrap();
        assert_eq!(
            request,
            [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f],
            "an SSLRequest"
        );
        sock.write_all(b"N").await.unwrap();
        let mut next = vec![0u8; 8];
        match tokio::time::timeout(Duration::from_secs(5), sock.read_exact(&mut next)).await {
            Ok(Ok(_)) => next,
            _ => Vec::new(),
        }
    });
    (port, seen)
}

#[tokio::test]
async fn a_server_without_tls_is_refused_by_require_and_used_in_plain_text_by_prefer() {
    let (port, seen) = server_without_tls().await;
    let require =
        format!("postgres://prismq@db.example:{port}/q?sslmode=require&hostaddr=127.0.0.1");
    let e = unavailable(open(require).await.unwrap_err());
    assert!(e.contains("server does not support TLS"), "{e}");
    assert!(e.contains("turn on ssl"), "says what to do: {e}");
    assert!(
        seen.await.unwrap().is_empty(),
        "nothing sent after the refusal"
    );

    // `prefer` (the default for a remote host) goes on in plain text: the next thing on the
    // wire is the startup message, protocol 3.0.
    let (port, seen) = server_without_tls().await;
    let prefer = format!("postgres://prismq@db.example:{port}/q?hostaddr=127.0.0.1");
    assert!(
        open(prefer).await.is_err(),
        "the stand-in says nothing more"
    );
    let next = seen.await.unwrap();
    assert_eq!(
        next.get(4..8),
        Some(&[0, 3, 0, 0][..]),
        "a startup message: {next:?}"
    );
}
