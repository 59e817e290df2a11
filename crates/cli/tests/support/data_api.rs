//! A loopback stand-in for the YouTube Data API: an HTTP/1.1 server on 127.0.0.1 that
//! answers every request with one fixture (the first `videos?chart=mostPopular` page) and
//! records the request lines. Enough for `trending_scrape` with `top_n` 1.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// The running stand-in.
#[derive(Debug, Clone)]
pub struct FakeDataApi {
    /// `http://127.0.0.1:PORT/youtube/v3`.
    pub base_url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeDataApi {
    /// Serves `body` (JSON) to every request until the test process ends.
    pub fn start(body: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
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
                seen.lock().unwrap().push(first.trim().to_owned());
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json; charset=UTF-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        FakeDataApi {
            base_url: format!("http://127.0.0.1:{port}/youtube/v3"),
            requests,
        }
    }

    /// The request lines served so far (`GET /youtube/v3/videos?… HTTP/1.1`).
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}
