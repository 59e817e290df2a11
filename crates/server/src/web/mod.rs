//! The dashboard served by `prismq serve` at `/`: server-rendered HTML pages (askama
//! templates compiled into the binary), a stylesheet and one small script served from the
//! binary itself, sign-in with an API key into a session, and the same ports as the API.
//! Every page is complete without JavaScript; the script only swaps the overview's numbers
//! as server-sent events arrive.
//!
//! Security: a strict Content-Security-Policy (no inline script or style, nothing from
//! another origin, `frame-ancestors 'none'`), `X-Content-Type-Options: nosniff`,
//! `Referrer-Policy: no-referrer`; a CSRF token on every form; every string from outside
//! (video metadata, task parameters, errors) is cleaned and bounded, then HTML-escaped by the
//! templates (none is ever marked safe).

pub mod assets;
pub mod chart;
pub mod dlq;
pub mod enqueue;
pub mod ideas;
pub mod overview;
pub mod page;
pub mod params_form;
pub mod schedules;
pub mod session;
pub mod signin;
pub mod tasks;
pub mod workers;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};

use crate::ServerState;

/// What the dashboard keeps beside the server's state.
#[derive(Debug)]
pub struct Web {
    /// The open sessions.
    pub sessions: session::Sessions,
    /// Cookies get `Secure` (the server speaks TLS).
    pub secure: bool,
}

/// How long a dashboard session lives without a request, unless configured.
pub const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(30 * 60);

/// The Content-Security-Policy of every dashboard answer.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The dashboard's routes, with its security headers.
pub fn routes(state: &ServerState) -> Router<ServerState> {
    let web = Arc::new(Web {
        sessions: session::Sessions::new(state.options.session_idle),
        secure: state.options.tls.is_some(),
    });
    Router::new()
        .route("/", get(overview::page))
        .route("/events/overview", get(overview::events))
        .route("/signin", get(signin::form).post(signin::submit))
        .route("/signout", post(signin::signout))
        .route("/tasks", get(tasks::list))
        .route("/tasks/{id}", get(tasks::show))
        .route("/tasks/{id}/cancel", post(tasks::cancel))
        .route("/tasks/{id}/retry", post(tasks::retry))
        .route("/dead-letters", get(dlq::list))
        .route("/dead-letters/retry", post(dlq::retry_all))
        .route("/dead-letters/purge", post(dlq::purge))
        .route("/workers", get(workers::list))
        .route("/schedules", get(schedules::list))
        .route(
            "/schedules/add",
            get(schedules::add_form).post(schedules::add),
        )
        .route("/schedules/{name}/{action}", post(schedules::act))
        .route("/enqueue", get(enqueue::form).post(enqueue::submit))
        .route("/ideas", get(ideas::list))
        .route("/ideas/{platform}/{id}", get(ideas::show))
        .route("/ideas/{platform}/{id}/chart.svg", get(ideas::chart))
        .route("/static/{file}", get(assets::serve))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(Extension(web))
}

/// Adds the security headers to every dashboard answer; pages are not cached.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let is_static = req.uri().path().starts_with("/static/");
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    // A stricter policy of the answer's own (the chart's) stays.
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CSP));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !is_static {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}
