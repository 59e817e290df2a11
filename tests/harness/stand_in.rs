//! A misbehaving stand-in for the YouTube Data API on loopback: a plain TCP server (no
//! HTTP library, so it can break the protocol on purpose) whose behaviour can be switched
//! while it runs. It records every request line and how many body bytes it pushed.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the stand-in answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// 200 with this JSON body.
    Ok(String),
    /// Reads the request and never answers (the socket stays open).
    Hang,
    /// Sends the headers at once, then one body byte every 300 ms.
    Trickle,
    /// Reads the request and closes the connection without a byte.
    Close,
    /// Promises this body's length, sends half of it, then closes.
    CutMidBody(String),
    /// A complete 200 response whose JSON is cut in half.
    TruncatedJson(String),
    /// 200 without a length, streaming filler until the client hangs up or 1 GiB is sent.
    Huge,
}

/// The running stand-in.
#[derive(Debug, Clone)]
pub struct StandIn {
    /// `http://127.0.0.1:PORT/youtube/v3`.
    pub base_url: String,
    mode: Arc<Mutex<Mode>>,
    requests: Arc<Mutex<Vec<String>>>,
    body_bytes: Arc<AtomicU64>,
}

const GIB: u64 = 1 << 30;

impl StandIn {
    pub fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().unwrap().port();
        let s = StandIn {
            base_url: format!("http://127.0.0.1:{port}/youtube/v3"),
            mode: Arc::new(Mutex::new(mode)),
            requests: Arc::new(Mutex::new(Vec::new())),
            body_bytes: Arc::new(AtomicU64::new(0)),
        };
        let me = s.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let me = me.clone();
                std::thread::spawn(move || me.serve(stream));
            }
        });
        s
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// The request lines so far (`GET /youtube/v3/videos?… HTTP/1.1`).
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Body bytes written to clients so far.
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes.load(Ordering::SeqCst)
    }

    fn serve(&self, mut stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
        let mut first = String::new();
        if reader.read_line(&mut first).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" => break,
                Ok(_) => {}
            }
        }
        self.requests.lock().unwrap().push(first.trim().to_owned());
        let mode = self.mode.lock().unwrap().clone();
        let head = |len: Option<usize>| {
            let len = len.map_or(String::new(), |n| format!("content-length: {n}\r\n"));
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json; charset=UTF-8\r\n{len}connection: close\r\n\r\n"
            )
        };
        match mode {
            Mode::Ok(body) => {
                let _ = write!(stream, "{}{body}", head(Some(body.len())));
                self.count(body.len());
            }
            Mode::Hang => {
                // Hold the socket open until the client gives up.
                let _ = stream.set_read_timeout(Some(Duration::from_secs(120)));
                let mut sink = String::new();
                let _ = reader.read_line(&mut sink);
            }
            Mode::Trickle => {
                let body = "{\"items\": []}                                                  ";
                let _ = stream.write_all(head(Some(body.len())).as_bytes());
                for b in body.bytes() {
                    if stream.write_all(&[b]).is_err() {
                        return;
                    }
                    self.count(1);
                    std::thread::sleep(Duration::from_millis(300));
                }
            }
            Mode::Close => {}
            Mode::CutMidBody(body) => {
                let half = &body.as_bytes()[..body.len() / 2];
                let _ = stream.write_all(head(Some(body.len())).as_bytes());
                let _ = stream.write_all(half);
                self.count(half.len());
            }
            Mode::TruncatedJson(body) => {
                let half = &body[..body.len() / 2];
                let _ = write!(stream, "{}{half}", head(Some(half.len())));
                self.count(half.len());
            }
            Mode::Huge => {
                let _ = stream.write_all(head(None).as_bytes());
                let _ = stream.write_all(b"{\"items\": [");
                let chunk = vec![b' '; 64 * 1024];
                let mut sent = 0u64;
                while sent < GIB {
                    if stream.write_all(&chunk).is_err() {
                        break;
                    }
                    sent += chunk.len() as u64;
                    self.count(chunk.len());
                }
            }
        }
        let _ = stream.flush();
    }

    fn count(&self, n: usize) {
        self.body_bytes.fetch_add(n as u64, Ordering::SeqCst);
    }
}
