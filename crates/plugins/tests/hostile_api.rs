//! The Data API client against hostile or failing servers on loopback: an error answer full
//! of control characters and padding, a server echoing the key, a redirect to another
//! origin, and transient failures retried within the attempt.

mod support;

use prismq_domain::text::{is_one_line, DETAIL_MAX_CHARS, MESSAGE_MAX_CHARS};
use prismq_domain::ErrorClass;
use serde_json::json;
use std::time::{Duration, Instant};
use support::fake_api::{counts, FakeApi};
use support::{config, Harness};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

const CANARY: &str = "HOSTILE-AIzaCanary0000SecretKey1111";

#[tokio::test]
async fn a_hostile_error_answer_becomes_one_short_clean_line_without_the_key() {
    let (server, base) = FakeApi::start().await;
    let h = Harness::new(config(&base, CANARY));
    let e = h
        .run("api_scrape", json!({"videos": ["Kq9MZLmFMHQ"]}))
        .await
        .unwrap_err();
    // The answer really was hostile: 5 MB, control characters, the key echoed.
    let sent = server.received_requests().await.unwrap();
    assert_eq!(sent.len(), 1, "a 400 is not retried");
    assert!(sent[0].url.query().unwrap().contains(CANARY));

    assert_eq!(e.class, ErrorClass::Permanent, "{e}");
    assert!(e.message.contains("HTTP 400"), "{e}");
    assert!(e.message.contains("badRequest"), "the reason is kept: {e}");
    assert!(
        is_one_line(&e.message),
        "control characters: {:?}",
        e.message
    );
    assert!(!e.message.contains('\u{1b}') && !e.message.contains('\u{7}'));
    let chars = e.message.chars().count();
    assert!(
        chars <= 2 * DETAIL_MAX_CHARS + 300,
        "{chars} characters: the 5 MB padding was not cut"
    );
    assert!(chars <= MESSAGE_MAX_CHARS);
    assert!(!e.message.contains(CANARY), "the key leaked: {e}");
    assert!(
        !e.message.contains("Canary0000Secret"),
        "part of the key leaked: {e}"
    );
    assert!(
        e.message.contains("key=[redacted]"),
        "the echoed parameter is shown redacted: {e}"
    );
    // The forged line is still there as text, but on the same line.
    assert!(e.message.contains("error: forged line"), "{e}");
    assert!(!e.message.contains("\nerror:"));
}

#[tokio::test]
async fn a_redirect_to_another_origin_never_receives_the_key() {
    let elsewhere = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"items\": []}"))
        .mount(&elsewhere)
        .await;
    let redirecting = MockServer::start().await;
    let target = format!("{}/youtube/v3/videos?key={CANARY}", elsewhere.uri());
    Mock::given(any())
        .respond_with(ResponseTemplate::new(302).insert_header("location", target.as_str()))
        .mount(&redirecting)
        .await;
    let base = format!("{}/youtube/v3/", redirecting.uri());
    let h = Harness::new(config(&base, CANARY));
    let e = h
        .run("api_scrape", json!({"videos": ["Kq9MZLmFMHQ"]}))
        .await
        .unwrap_err();
    assert_eq!(
        redirecting.received_requests().await.unwrap().len(),
        1,
        "asked once, not retried"
    );
    assert!(
        elsewhere.received_requests().await.unwrap().is_empty(),
        "the redirect was followed"
    );
    assert_eq!(e.class, ErrorClass::Permanent, "{e}");
    assert!(e.message.contains("HTTP 302, a redirect"), "{e}");
    assert!(e.message.contains("youtube.api_base_url"), "{e}");
    assert!(!e.message.contains(CANARY), "{e}");
}

#[tokio::test]
async fn a_redirect_to_the_same_origin_is_not_followed_either() {
    let server = MockServer::start().await;
    let target = format!("{}/youtube/v3/videos?key={CANARY}", server.uri());
    Mock::given(any())
        .respond_with(ResponseTemplate::new(307).insert_header("location", target.as_str()))
        .mount(&server)
        .await;
    let h = Harness::new(config(&format!("{}/youtube/v3/", server.uri()), CANARY));
    let e = h
        .run("api_scrape", json!({"videos": ["Kq9MZLmFMHQ"]}))
        .await
        .unwrap_err();
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert!(e.message.contains("HTTP 307"), "{e}");
}

#[tokio::test]
async fn two_503s_then_success_complete_in_one_attempt() {
    let (server, base) = FakeApi::start().await;
    let h = Harness::new(config(&base, "UNAVAILABLE2"));
    let started = Instant::now();
    let r = h
        .run("api_scrape", json!({"videos": ["Kq9MZLmFMHQ"]}))
        .await
        .unwrap();
    assert_eq!(r.items.len(), 1);
    assert_eq!(
        counts(&server).await["videos"],
        3,
        "two 503s, then the answer"
    );
    assert_eq!(r.counters["requests.videos"], 3, "each try is counted");
    // Jittered backoff: 0.25–0.5 s, then 0.5–1 s.
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(750), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn three_503s_go_up_as_retryable_after_three_tries() {
    let (server, base) = FakeApi::start().await;
    let h = Harness::new(config(&base, "UNAVAILABLE3"));
    let e = h
        .run("api_scrape", json!({"videos": ["Kq9MZLmFMHQ"]}))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Retryable, "{e}");
    assert!(e.message.contains("HTTP 503"), "{e}");
    assert_eq!(counts(&server).await["videos"], 3);
    // The next attempt finds the server well again.
    let r = h
        .run("api_scrape", json!({"videos": ["Kq9MZLmFMHQ"]}))
        .await
        .unwrap();
    assert_eq!(r.items.len(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_retryable_after_the_tries_within_the_deadline() {
    // A port that was just free: nothing listens there, so every connection is refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}/youtube/v3/");
    let h = Harness::new(config(&base, CANARY));
    let started = Instant::now();
    let e = h
        .run("api_scrape", json!({"videos": ["Kq9MZLmFMHQ"]}))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.class, ErrorClass::Retryable, "{e}");
    assert!(e.message.contains("could not reach YouTube"), "{e}");
    assert!(!e.message.contains(CANARY), "{e}");
    assert!(is_one_line(&e.message));
    // Three tries: two waits of 0.25–0.5 s and 0.5–1 s, nothing more.
    assert!(
        took >= Duration::from_millis(750),
        "retried too fast: {took:?}"
    );
    assert!(took < Duration::from_secs(4), "{took:?}");
    // The quota ledger saw three requests.
    use prismq_domain::ports::QuotaLedger;
    assert_eq!(h.store.used("youtube_data_api.general").await.unwrap(), 3);
}

#[tokio::test]
async fn a_cancel_during_the_backoff_ends_the_attempt_at_once() {
    let (server, base) = FakeApi::start().await;
    let h = Harness::new(config(&base, "UNAVAILABLE9"));
    let cancel = prismq_domain::CancelSignal::new();
    let run = h.run_until(
        "api_scrape",
        json!({"videos": ["Kq9MZLmFMHQ"]}),
        cancel.clone(),
    );
    let stop = async {
        while counts(&server).await.get("videos").copied().unwrap_or(0) < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        cancel.cancel();
    };
    let started = Instant::now();
    let (e, ()) = tokio::join!(run, stop);
    let e = e.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(600),
        "waited out the backoff"
    );
    assert!(e.message.contains("cancelled"), "{e}");
    assert_eq!(
        counts(&server).await["videos"],
        1,
        "no try after the cancel"
    );
}

#[tokio::test]
async fn a_long_retry_after_goes_up_while_a_short_one_is_waited_for() {
    // THROTTLE answers 429 with Retry-After: 120, beyond the in-attempt cap: one request,
    // and the runtime defers the task (see data_api.rs short_term_throttling_retries).
    let (server, base) = FakeApi::start().await;
    let h = Harness::new(config(&base, "THROTTLE"));
    let e = h
        .run("api_scrape", json!({"videos": ["Kq9MZLmFMHQ"]}))
        .await
        .unwrap_err();
    assert!(matches!(e.class, ErrorClass::RetryableAfter(_)), "{e}");
    assert_eq!(counts(&server).await["videos"], 1);

    // A 429 asking for 1 s, then success: waited for within the attempt.
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_string("{}"),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let videos = std::fs::read_to_string(format!(
        "{}/tests/fixtures/data_api/videos_by_id.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_string(videos))
        .mount(&server)
        .await;
    let h = Harness::new(config(&format!("{}/youtube/v3/", server.uri()), "K"));
    let started = Instant::now();
    let r = h
        .run("api_scrape", json!({"videos": ["Kq9MZLmFMHQ"]}))
        .await
        .unwrap();
    assert_eq!(r.items.len(), 1);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After not honoured"
    );
}
