//! `prismq keys` and `prismq serve` as real processes. The canary: the key `keys create`
//! prints appears in no other output, no log line and no file (the database, its WAL and
//! shared memory included), while a real server answers requests made with it; SIGTERM
//! stops the server cleanly.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use support::Sandbox;

/// One HTTP/1.1 request over a fresh connection; the whole answer as text.
fn http(addr: &str, method: &str, path: &str, key: &str, body: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Every byte of every file under `dir`.
fn all_files(dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            all_files(&p, out);
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p.display().to_string(), b));
        }
    }
}

#[test]
fn the_key_is_printed_once_and_nowhere_else() {
    let s = Sandbox::new();
    let mut outputs: Vec<String> = Vec::new();
    let created = s.json(&[
        "keys",
        "create",
        "--name",
        "canary",
        "--scope",
        "read,enqueue",
        "--rate-limit",
        "100",
    ]);
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("pqk_") && key.len() == 68, "{key}");
    assert_eq!(
        created["api_key"]["scopes"],
        serde_json::json!(["read", "enqueue"])
    );
    let id = created["api_key"]["id"].as_i64().unwrap().to_string();
    let human = s.run(&["keys", "create", "--name", "other", "--scope", "admin"]);
    assert!(human.status.success());
    let text = String::from_utf8_lossy(&human.stdout).into_owned();
    assert!(text.contains("not shown again"), "{text}");

    for args in [
        vec!["keys", "list"],
        vec!["keys", "list", "--json"],
        vec!["-vv", "keys", "list"],
    ] {
        let o = s.run(&args);
        assert!(o.status.success(), "{args:?}");
        outputs.push(String::from_utf8_lossy(&o.stdout).into_owned());
        outputs.push(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    assert!(outputs[0].contains("canary") && outputs[0].contains(&key[..12]));

    // A real server, logging at trace level, answering with the key.
    let mut server = s
        .command(&["-vv", "serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(server.stderr.take().unwrap());
    let mut log = String::new();
    let addr = loop {
        let mut line = String::new();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "server exited: {log}"
        );
        log.push_str(&line);
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let stats = http(&addr, "GET", "/v1/stats", &key, "");
    assert!(stats.starts_with("HTTP/1.1 200"), "{stats}");
    let enq = http(
        &addr,
        "POST",
        "/v1/tasks",
        &key,
        r#"{"type":"keyword_search","params":{"query":"rust"}}"#,
    );
    assert!(enq.starts_with("HTTP/1.1 201"), "{enq}");
    let bad = http(
        &addr,
        "POST",
        "/v1/tasks",
        &key,
        r#"{"type":"keyword_search","nope":1}"#,
    );
    assert!(bad.starts_with("HTTP/1.1 422"), "{bad}");
    // The key with its last hex digit changed (never to itself).
    let last = if key.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &key[..key.len() - 1]);
    let denied = http(&addr, "GET", "/v1/stats", &wrong, "");
    assert!(denied.starts_with("HTTP/1.1 401"), "{denied}");
    outputs.extend([stats, enq, bad, denied]);

    // SIGTERM: a graceful stop, exit 0.
    let st = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    err.read_to_string(&mut log).unwrap();
    let status = server.wait().unwrap();
    assert!(status.success(), "{status:?}: {log}");
    let mut out = String::new();
    server
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    outputs.push(out);
    assert!(
        log.contains("GET") || log.contains("/v1/stats"),
        "requests are logged: {log}"
    );
    outputs.push(log);

    let revoked = s.run(&["keys", "revoke", &id]);
    assert!(revoked.status.success());
    outputs.push(String::from_utf8_lossy(&revoked.stdout).into_owned());
    let list = s.json(&["keys", "list"]);
    assert_eq!(list[0]["active"], false);
    assert!(list[0]["last_used_at"].is_i64() || list[0]["last_used_at"].is_string());

    for (i, o) in outputs.iter().enumerate() {
        assert!(!o.contains(&key), "output {i} shows the key: {o}");
    }
    let mut files = Vec::new();
    all_files(s.dir.path(), &mut files);
    assert!(files.iter().any(|(p, _)| p.ends_with("queue.db")));
    for (path, bytes) in files {
        assert!(
            !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
            "{path} holds the key"
        );
    }
}

#[test]
fn bad_flags_are_refused_and_write_nothing() {
    let s = Sandbox::new();
    let e = s.fails(&["keys", "create", "--name", "x", "--scope", "root"], 2);
    assert!(e.contains("read, enqueue, work, admin"), "{e}");
    let e = s.fails(
        &[
            "keys",
            "create",
            "--name",
            "x",
            "--scope",
            "read",
            "--rate-limit",
            "0",
        ],
        2,
    );
    assert!(e.contains("rate-limit"), "{e}");
    assert!(!s.db().exists(), "nothing created");
    let e = s.fails(&["serve", "--bind", "0.0.0.0:0"], 2);
    assert!(e.contains("--insecure-bind"), "{e}");
    let e = s.fails(&["serve", "--bind", "localhost"], 2);
    assert!(e.contains("IP:PORT"), "{e}");
    let e = s.fails(
        &[
            "serve",
            "--tls-cert",
            "missing.pem",
            "--tls-key",
            "missing.pem",
        ],
        2,
    );
    assert!(e.contains("missing.pem") && e.contains("PEM"), "{e}");
    s.fails(&["serve", "--tls-cert", "missing.pem"], 2);
    let e = s.fails(&["serve", "--body-limit", "10"], 2);
    assert!(e.contains("--body-limit") && e.contains("1024"), "{e}");
    let e = s.fails(&["serve", "--request-timeout", "1s"], 2);
    assert!(e.contains("--request-timeout") && e.contains("3s"), "{e}");
    // The [server] keys: checked as the configuration loads (exit 5), and used by serve.
    let mut c = Sandbox::new();
    c.env("PRISMQ_SERVER__TLS_CERT", "cert.pem");
    let e = c.fails(&["serve"], 5);
    assert!(e.contains("server.tls_key"), "{e}");
    let mut c = Sandbox::new();
    c.env("PRISMQ_SERVER__BIND", "0.0.0.0:0");
    let e = c.fails(&["serve"], 2);
    assert!(e.contains("--insecure-bind"), "{e}");
    let mut c = Sandbox::new();
    c.env("PRISMQ_SERVER__TLS_CERT", "missing.pem")
        .env("PRISMQ_SERVER__TLS_KEY", "missing.pem");
    let e = c.fails(&["serve"], 2);
    assert!(e.contains("missing.pem") && e.contains("PEM"), "{e}");
    // A remote worker's CA file that cannot be used: refused naming it, before any request.
    let mut c = Sandbox::new();
    c.env("PRISMQ_API_KEY", format!("pqk_{}", "0".repeat(64)));
    let e = c.fails(
        &[
            "work",
            "--server",
            "https://127.0.0.1:9",
            "--ca-cert",
            "missing-ca.pem",
        ],
        2,
    );
    assert!(
        e.contains("missing-ca.pem") && e.contains("CERTIFICATE"),
        "{e}"
    );
    assert!(!s.db().exists(), "nothing created");
    s.ok(&["init"]);
    let e = s.fails(&["keys", "revoke", "7"], 3);
    assert!(e.contains("API key 7"), "{e}");
}
