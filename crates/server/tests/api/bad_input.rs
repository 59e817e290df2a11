//! Bad input: malformed JSON, wrong types, unknown fields, a bad task in a batch, a body
//! over the limit (declared and streamed), deep nesting, a client that never finishes its
//! body. Each is a clear error (or a closed connection), nothing is written, and the server
//! goes on serving.

use std::time::Duration;

use prismq_domain::ports::Scope;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_bodies_write_nothing() {
    let s = Server::start().await;
    let k = s.key(&[Scope::Admin], 10_000).await;
    let cases: &[(&str, &str, &str)] = &[
        ("/v1/tasks", "{\"type\":", "body"),
        ("/v1/tasks", "[]", "body"),
        (
            "/v1/tasks",
            r#"{"type":"keyword_search","priority":"high"}"#,
            "priority",
        ),
        (
            "/v1/tasks",
            r#"{"type":"keyword_search","params":{"query":"a"},"colour":"red"}"#,
            "colour",
        ),
        (
            "/v1/tasks",
            r#"{"type":"keyword_search","params":{"query":"a"},"priority":11}"#,
            "priority",
        ),
        ("/v1/tasks", r#"{"type":"no_such_type"}"#, "type"),
        (
            "/v1/tasks",
            r#"{"type":"keyword_search","params":{"query":"a","top_n":0}}"#,
            "params.top_n",
        ),
        (
            "/v1/tasks",
            r#"{"type":"keyword_search","params":{"query":"a"},"run_after":"9999-12-31T23:59:59Z"}"#,
            "run_after",
        ),
        (
            "/v1/tasks/batch",
            r#"[{"type":"keyword_search","params":{"query":"a"}},{"type":"keyword_search","params":{"query":"b"},"max_attempts":0}]"#,
            "tasks[1].max_attempts",
        ),
        ("/v1/tasks/batch", "[]", "tasks"),
    ];
    for (route, body, field) in cases {
        let a = s.post(&k, route, route, body).await;
        assert_eq!(a.status, 422, "{body}: {}", a.text);
        assert_eq!(a.code(), "invalid");
        let got = a.json["error"]["field"].as_str().unwrap_or_default();
        assert!(
            got.contains(field),
            "{body}: field {got:?}, wanted {field:?}"
        );
        assert!(a.json["error"]["accepted"].is_string(), "{body}");
    }
    let unknown = s
        .post(&k, "/v1/tasks", "/v1/tasks", r#"{"type":"x","colour":1}"#)
        .await;
    assert!(unknown.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("unknown field `colour`"));
    // A field name with an escape sequence and a bidi override comes back defused.
    let forged = s
        .post(
            &k,
            "/v1/tasks",
            "/v1/tasks",
            "{\"type\":\"x\",\"\\u001b[31m\\u202eevil\":1}",
        )
        .await;
    let m = forged.json["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("evil") && !m.contains('\u{1b}') && !m.contains('\u{202e}'),
        "{m:?}"
    );

    // 100,000-deep nesting: serde's recursion limit refuses it, the server lives on.
    let deep = format!(
        "{{\"type\":\"keyword_search\",\"params\":{{\"query\":\"a\",\"x\":{}{}}}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let a = s.post(&k, "/v1/tasks", "/v1/tasks", &deep).await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert!(a.text.contains("recursion limit"), "{}", a.text);

    let q = s.get(&k, "/v1/tasks", "/v1/tasks?limit=0").await;
    assert_eq!(
        (q.status, q.json["error"]["field"].as_str()),
        (422, Some("limit"))
    );
    let q = s.get(&k, "/v1/tasks", "/v1/tasks?colour=red").await;
    assert_eq!(q.status, 422);
    let q = s.get(&k, "/v1/tasks", "/v1/tasks?status=lost").await;
    assert_eq!(q.status, 422);
    let p = s.get(&k, "/v1/tasks/{id}", "/v1/tasks/abc").await;
    assert_eq!(
        (p.status, p.json["error"]["field"].as_str()),
        (422, Some("id"))
    );

    assert_eq!(s.task_count().await, 0, "nothing was written");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_body_is_413_and_a_stalled_one_times_out() {
    let s = Server::start_with(|o| {
        o.body_limit = 64 * 1024;
        o.request_timeout = Duration::from_secs(2);
    })
    .await;
    let k = s.key(&[Scope::Admin], 10_000).await;
    // 100 MB, declared up front: refused from the headers, before any byte of it is read.
    let declared = raw(
        &s,
        &format!("POST /v1/tasks/batch HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {k}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n", 100 * 1024 * 1024),
    )
    .await;
    assert!(declared.starts_with("HTTP/1.1 413"), "{declared:?}");
    assert!(declared.contains("\"too_large\""), "{declared:?}");
    // Streamed without a length (chunked): cut off at the limit. The answer is a 413, or
    // the connection closes before it is read (the server does not read the rest).
    let mut chunked = format!("POST /v1/tasks HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {k}\r\ncontent-type: application/json\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n");
    chunked.push_str(&format!(
        "{:x}\r\n{}\r\n0\r\n\r\n",
        64 * 1024 + 1,
        " ".repeat(64 * 1024 + 1)
    ));
    let streamed = raw(&s, &chunked).await;
    assert!(
        streamed.is_empty() || streamed.starts_with("HTTP/1.1 413"),
        "{streamed:?}"
    );

    // A client that sends half its body and stalls: the request times out (408) while
    // others are served.
    let mut slow = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /v1/tasks HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {k}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"type\":"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    assert_eq!(s.get(&k, "/v1/stats", "/v1/stats").await.status, 200);
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(20), slow.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");

    assert_eq!(s.task_count().await, 0, "nothing was written");
    assert_eq!(s.get(&k, "/v1/stats", "/v1/stats").await.status, 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_body_limit_and_request_timeout_apply() {
    // The `[server]` keys, as `prismq serve` turns them into options.
    let s = Server::start_configured(&[
        ("server.body_limit", "65536"),
        ("server.request_timeout", "3s"),
    ])
    .await;
    let k = s.key(&[Scope::Admin], 10_000).await;
    // A 100 MB body: 413 with the API's error body naming the configured limit.
    let declared = raw(
        &s,
        &format!("POST /v1/tasks/batch HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {k}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n", 100 * 1024 * 1024),
    )
    .await;
    assert!(declared.starts_with("HTTP/1.1 413"), "{declared:?}");
    let body: serde_json::Value =
        serde_json::from_str(declared.split("\r\n\r\n").nth(1).unwrap_or_default()).unwrap();
    assert_eq!(body["error"]["code"], "too_large", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("65536"),
        "{body}"
    );
    // Just under the limit is read (and judged on its content: 422, not 413).
    let under = format!("[{}]", " ".repeat(60 * 1024));
    let a = s
        .post(&k, "/v1/tasks/batch", "/v1/tasks/batch", &under)
        .await;
    assert_eq!(a.status, 422, "{}", a.text);

    // A client that never finishes its body is cut off after the configured 3 s, while
    // another is served meanwhile.
    let mut slow = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /v1/tasks HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {k}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"type\":"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    assert_eq!(s.get(&k, "/v1/stats", "/v1/stats").await.status, 200);
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(20), slow.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert_eq!(s.task_count().await, 0, "nothing was written");
    assert_eq!(s.get(&k, "/v1/stats", "/v1/stats").await.status, 200);
    s.stop().await;
}

/// Writes `request` on a fresh connection and reads until the server closes it (an empty
/// answer when it resets the connection).
async fn raw(s: &Server, request: &str) -> String {
    let mut c = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let _ = c.write_all(request.as_bytes()).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), c.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_bind_beyond_loopback_needs_consent() {
    let mut o = prismq_server::ServerOptions::new("0.0.0.0:8787".parse().unwrap());
    let e = prismq_server::check_bind(&o).unwrap_err();
    assert!(e.to_string().contains("--insecure-bind"), "{e}");
    o.insecure_bind = true;
    let w = prismq_server::check_bind(&o).unwrap().unwrap();
    assert!(w.contains("unencrypted"), "{w}");
    o.bind = "[::1]:8787".parse().unwrap();
    o.insecure_bind = false;
    assert_eq!(prismq_server::check_bind(&o).unwrap(), None);
}
