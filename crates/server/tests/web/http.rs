//! Plain HTTP against the dashboard: security headers, sign-in refusals, CSRF refusals
//! (no token, another session's token), sign-out and the static files.

use reqwest::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};

use prismq_domain::ports::Scope;

use crate::support::Server;

/// A client that does not follow redirects (to see them and their cookies).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of cookie `name` set by `r`.
pub fn set_cookie(r: &reqwest::Response, name: &str) -> Option<(String, String)> {
    r.headers().get_all(SET_COOKIE).iter().find_map(|v| {
        let v = v.to_str().ok()?;
        let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
        let (k, val) = pair.split_once('=')?;
        (k == name).then(|| (val.to_owned(), attrs.to_owned()))
    })
}

/// The first `name="csrf" value="…"` of a page.
pub fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no CSRF field in the page: {html}"));
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// A signed-in session: its cookie header and its CSRF token.
pub struct Signed {
    pub cookie: String,
    pub csrf: String,
}

/// Signs in over HTTP with `key`.
pub async fn sign_in(server: &Server, key: &str) -> Signed {
    let c = client();
    let form = c.get(server.url("/signin")).send().await.unwrap();
    let (token, _) = set_cookie(&form, "prismq_signin").expect("the sign-in cookie");
    let html = form.text().await.unwrap();
    let csrf = csrf_of(&html);
    let r = post(
        server,
        "/signin",
        &format!("prismq_signin={token}"),
        &format!("csrf={csrf}&key={key}"),
    )
    .await;
    assert_eq!(r.status(), 303, "sign-in redirects");
    let (sid, attrs) = set_cookie(&r, "prismq_session").expect("a session cookie");
    assert!(
        attrs.contains("HttpOnly") && attrs.contains("SameSite=Strict"),
        "{attrs}"
    );
    let cookie = format!("prismq_session={sid}");
    let page = get(server, "/", &cookie).await;
    assert_eq!(page.status(), 200);
    Signed {
        csrf: csrf_of(&page.text().await.unwrap()),
        cookie,
    }
}

pub async fn get(server: &Server, path: &str, cookie: &str) -> reqwest::Response {
    client()
        .get(server.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

pub async fn post(server: &Server, path: &str, cookie: &str, body: &str) -> reqwest::Response {
    client()
        .post(server.url(path))
        .header("cookie", cookie)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn pages_carry_the_security_headers_and_need_a_session() {
    let s = Server::start().await;
    let r = get(&s, "/", "").await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/signin");
    let key = s.key(&[Scope::Read], 600).await;
    let me = sign_in(&s, &key).await;
    for path in ["/", "/signin", "/static/app.css", "/static/live.js"] {
        let r = get(&s, path, &me.cookie).await;
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
    }
    // No inline script or style in a page.
    let html = get(&s, "/", &me.cookie).await.text().await.unwrap();
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "{html}"
    );
    assert!(html.contains("<script src=\"/static/live.js\"></script>"));
    s.stop().await;
}

#[tokio::test]
async fn sign_in_refuses_bad_keys_a_key_without_read_and_a_missing_token() {
    let s = Server::start().await;
    let c = client();
    let form = c.get(s.url("/signin")).send().await.unwrap();
    let (token, attrs) = set_cookie(&form, "prismq_signin").unwrap();
    assert!(attrs.contains("HttpOnly") && attrs.contains("SameSite=Strict"));
    assert!(!attrs.contains("Secure"), "no TLS, no Secure: {attrs}");
    let csrf = csrf_of(&form.text().await.unwrap());
    let cookie = format!("prismq_signin={token}");
    let bad = post(&s, "/signin", &cookie, &format!("csrf={csrf}&key=pqk_nope")).await;
    assert_eq!(bad.status(), 401);
    assert!(set_cookie(&bad, "prismq_session").is_none());
    assert!(bad
        .text()
        .await
        .unwrap()
        .contains("malformed, unknown or revoked"));
    let worker = s.key(&[Scope::Work], 600).await;
    let r = post(&s, "/signin", &cookie, &format!("csrf={csrf}&key={worker}")).await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("lacks the read scope"));
    // A form posted from elsewhere has no token cookie.
    let reader = s.key(&[Scope::Read], 600).await;
    let r = post(&s, "/signin", "", &format!("csrf={csrf}&key={reader}")).await;
    assert_eq!(r.status(), 403);
    assert!(set_cookie(&r, "prismq_session").is_none());
    s.stop().await;
}

#[tokio::test]
async fn a_post_without_the_csrf_token_or_with_another_sessions_is_refused() {
    let s = Server::start().await;
    let admin = s.key(&[Scope::Admin], 600).await;
    let a = sign_in(&s, &admin).await;
    let b = sign_in(&s, &admin).await;
    assert_ne!(a.csrf, b.csrf, "each session has its own token");
    // Sign-out is a form like any other.
    let none = post(&s, "/signout", &a.cookie, "").await;
    assert_eq!(none.status(), 403);
    assert!(none.text().await.unwrap().contains("security token"));
    let other = post(&s, "/signout", &a.cookie, &format!("csrf={}", b.csrf)).await;
    assert_eq!(other.status(), 403);
    // Still signed in after both refusals.
    assert_eq!(get(&s, "/", &a.cookie).await.status(), 200);
    let ok = post(&s, "/signout", &a.cookie, &format!("csrf={}", a.csrf)).await;
    assert_eq!(ok.status(), 303);
    let (cleared, attrs) = set_cookie(&ok, "prismq_session").unwrap();
    assert!(cleared.is_empty() && attrs.contains("Max-Age=0"));
    assert_eq!(get(&s, "/", &a.cookie).await.status(), 303, "signed out");
    assert_eq!(
        get(&s, "/", &b.cookie).await.status(),
        200,
        "the other session lives on"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_session_ends_after_the_idle_time() {
    let s = Server::start_with(|o| o.session_idle = std::time::Duration::from_millis(300)).await;
    let key = s.key(&[Scope::Read], 600).await;
    let me = sign_in(&s, &key).await;
    assert_eq!(get(&s, "/", &me.cookie).await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(get(&s, "/", &me.cookie).await.status(), 303);
    s.stop().await;
}

#[tokio::test]
async fn revoking_the_key_ends_its_sessions_at_once() {
    let s = Server::start().await;
    let key = s.key(&[Scope::Read], 600).await;
    let me = sign_in(&s, &key).await;
    assert_eq!(get(&s, "/tasks", &me.cookie).await.status(), 200);
    let id = s.app.keys.list().await.unwrap()[0].id;
    s.app.keys.revoke(id).await.unwrap();
    let r = get(&s, "/tasks", &me.cookie).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/signin");
    s.stop().await;
}

#[tokio::test]
async fn cookies_are_secure_when_the_server_speaks_tls() {
    // The router as `serve` builds it for TLS files (the handshake itself is tested in the
    // API tests); served over plain TCP here to read its cookies.
    let s = Server::start().await;
    let mut options = prismq_server::ServerOptions::new("127.0.0.1:0".parse().unwrap());
    options.tls = Some(prismq_server::tls::TlsFiles {
        cert: "unused.pem".into(),
        key: "unused.key".into(),
    });
    let router = prismq_server::router(s.app.clone(), options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = tokio::spawn(async move { axum::serve(listener, router).await });
    let r = client()
        .get(format!("http://{addr}/signin"))
        .send()
        .await
        .unwrap();
    let (_, attrs) = set_cookie(&r, "prismq_signin").unwrap();
    assert!(
        attrs.contains("Secure") && attrs.contains("HttpOnly"),
        "{attrs}"
    );
    served.abort();
    s.stop().await;
}

#[tokio::test]
async fn the_live_stream_sends_the_numbers_and_ends_with_the_session() {
    let s = Server::start().await;
    let key = s.key(&[Scope::Read], 600).await;
    let me = sign_in(&s, &key).await;
    let mut r = get(&s, "/events/overview", &me.cookie).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let first = String::from_utf8(r.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    assert!(
        first.starts_with("data: {") && first.contains("\"count.all.queued\":\"0\""),
        "{first}"
    );
    let ok = post(&s, "/signout", &me.cookie, &format!("csrf={}", me.csrf)).await;
    assert_eq!(ok.status(), 303);
    // The stream notices at its next tick and ends.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(_chunk) = r.chunk().await.unwrap() {}
    })
    .await;
    assert!(ended.is_ok(), "the stream ended after sign-out");
    // Without a session there is no stream.
    assert_eq!(get(&s, "/events/overview", &me.cookie).await.status(), 303);
    s.stop().await;
}

#[tokio::test]
async fn revoking_the_key_ends_an_open_live_stream() {
    let s = Server::start().await;
    let key = s.key(&[Scope::Read], 600).await;
    let me = sign_in(&s, &key).await;
    let mut r = get(&s, "/events/overview", &me.cookie).await;
    assert_eq!(r.status(), 200);
    let first = String::from_utf8(r.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    assert!(first.starts_with("data: {"), "{first}");
    let id = s.app.keys.list().await.unwrap()[0].id;
    s.app.keys.revoke(id).await.unwrap();
    // No request is made: the stream itself notices at its next beat and ends.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(_chunk) = r.chunk().await.unwrap() {}
    })
    .await;
    assert!(ended.is_ok(), "the stream ended after the key was revoked");
    assert_eq!(
        get(&s, "/", &me.cookie).await.status(),
        303,
        "the session ended too"
    );
    s.stop().await;
}
