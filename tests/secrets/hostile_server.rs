//! A hostile Data API under the real `prismq collect`: a 400 whose reason carries ESC, BEL,
//! CR, LF, the request's query string (the key with it) and 5 MB of padding, and a 302 to
//! another origin. Nothing the server sent may reach the terminal raw, the key nowhere, the
//! stored error is short, and the other origin is never asked.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use prismq_tests::harness::Sandbox;

const CANARY: &str = "AIzaSyHostileCanary2222SecretKey3333";

/// Reads a request head; returns its target (`/youtube/v3/videos?…`).
fn request_target(stream: &TcpStream) -> String {
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    let _ = reader.read_line(&mut first);
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {}
        }
    }
    first.split(' ').nth(1).unwrap_or_default().to_string()
}

/// Serves `answer(target)` to every connection on a loopback port; counts connections.
fn serve(
    answer: impl Fn(&str) -> (u16, Vec<(String, String)>, String) + Send + 'static,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
            let target = request_target(&stream);
            let (status, headers, body) = answer(&target);
            let mut head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                head += &format!("{k}: {v}\r\n");
            }
            head += "\r\n";
            let mut stream = stream;
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
        }
    });
    (origin, hits)
}

fn hostile_400(target: &str) -> (u16, Vec<(String, String)>, String) {
    let echo = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let reason = format!(
        "\u{1b}[2J\u{1b}[1;31mbadRequest\u{7}\r\nerror: forged line from the server\r\n{echo}\n{}",
        "A".repeat(5 << 20)
    );
    let body = serde_json::json!({"error": {"code": 400, "message": echo, "errors": [
        {"reason": reason, "location": format!("\u{1b}]0;owned\u{7}\r{echo}"), "domain": "global"}
    ]}});
    (400, Vec::new(), body.to_string())
}

fn sandbox(base_url: &str) -> Sandbox {
    let mut s = Sandbox::new();
    s.env("YOUTUBE_API_KEY", CANARY)
        .env("PRISMQ_YOUTUBE__BACKEND", "api")
        .env("PRISMQ_YOUTUBE__API_BASE_URL", base_url)
        .env("PRISMQ_YOUTUBE__REQUEST_TIMEOUT", "5s")
        .env("PRISMQ_WORKER__IDLE_BACKOFF_MAX", "100ms");
    s.ok(&["init"]);
    s
}

fn no_control_but_newlines(text: &str) -> bool {
    !text.chars().any(|c| c.is_control() && c != '\n')
}

#[test]
fn a_hostile_error_answer_is_stored_and_printed_short_clean_and_without_the_key() {
    let (origin, hits) = serve(hostile_400);
    let s = sandbox(&format!("{origin}/youtube/v3"));
    let out = s.run(&["collect", "videos", "V41Iou1O0uQ"]);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "a 400 is asked once: {printed}"
    );
    assert!(!out.status.success(), "{printed}");
    assert!(printed.contains("badRequest"), "{printed}");
    assert!(
        no_control_but_newlines(&printed),
        "raw control characters: {printed:?}"
    );
    assert!(
        !printed.lines().any(|l| l.starts_with("error: forged")),
        "the server forged a line: {printed}"
    );
    assert!(!printed.contains(CANARY), "the key was printed: {printed}");
    assert!(printed.len() < 20_000, "{} bytes printed", printed.len());

    let task = s.json(&["tasks", "show", "1"]);
    let error = task["task"]["last_error"].as_str().unwrap();
    assert!(
        error.chars().count() <= 4_000,
        "{} chars stored",
        error.len()
    );
    assert!(!error.chars().any(char::is_control), "{error:?}");
    assert!(!task.to_string().contains(CANARY), "{task}");
    let (db, wal) = s.db_bytes();
    for bytes in [Some(db), wal].into_iter().flatten() {
        assert!(
            !bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
            "the key is stored in the database"
        );
        assert!(bytes.len() < 4 << 20, "{} bytes stored", bytes.len());
    }
}

#[test]
fn a_redirect_to_another_origin_is_not_followed() {
    let (elsewhere, elsewhere_hits) = serve(|_| (200, Vec::new(), "{\"items\": []}".into()));
    let (origin, hits) = serve(move |target| {
        let to = format!("{elsewhere}{target}");
        (302, vec![("location".into(), to)], String::new())
    });
    let s = sandbox(&format!("{origin}/youtube/v3"));
    let out = s.run(&["collect", "videos", "V41Iou1O0uQ"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(hits.load(Ordering::SeqCst), 1, "{stderr}");
    assert_eq!(
        elsewhere_hits.load(Ordering::SeqCst),
        0,
        "the other origin was asked (with the key)"
    );
    let task = s.json(&["tasks", "show", "1"]);
    let error = task["task"]["last_error"].as_str().unwrap();
    assert!(error.contains("redirect"), "{error}");
    assert!(!task.to_string().contains(CANARY));
}
