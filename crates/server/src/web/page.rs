//! What every page shares: the signed-in viewer (from the session cookie), the page chrome
//! (navigation, who is signed in, the CSRF token), error pages, and text helpers that clean
//! and bound outside strings before the templates escape them.

use std::sync::Arc;
use std::time::Instant;

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};

use prismq_domain::ports::{ApiKey, Scope};
use prismq_domain::{text, PortError, Timestamp};

use super::session::{self, Session};
use super::Web;
use crate::error::ApiError;
use crate::ServerState;

/// The longest title or name shown (longer ones are cut and end with an ellipsis).
pub const TITLE_MAX: usize = 200;
/// The longest one-line value shown (parameters, errors, log messages).
pub const LINE_MAX: usize = 2_000;
/// The longest multi-line text shown (a description, a task's parameters).
pub const BLOCK_MAX: usize = 20_000;

/// `s` on one line, control and bidi characters replaced, at most `max` characters.
pub fn line(s: &str, max: usize) -> String {
    text::one_line(s, max)
}

/// `s` with its lines kept, control and bidi characters replaced, at most `max` characters.
pub fn block(s: &str, max: usize) -> String {
    text::multi_line(s, max)
}

/// An instant as `2026-12-03 11:30:00 UTC`.
pub fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// An optional instant, `-` when absent.
pub fn opt_time(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "-".to_owned(), time)
}

/// A count with thousands separators.
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// The signed-in viewer of a page: the session the cookie names. A page request without
/// one is sent to the sign-in page; a form sent without one is refused.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The session id.
    pub sid: String,
    /// The session.
    pub session: Session,
    /// The dashboard's state.
    pub web: Arc<Web>,
}

/// `key` as the store holds it now, if it is still active (`None` once revoked or
/// removed). The keys table is small: this is one read of every key.
///
/// # Errors
/// The store's error.
pub async fn active_key(state: &ServerState, key: &ApiKey) -> Result<Option<ApiKey>, PortError> {
    Ok(state
        .app
        .keys
        .list()
        .await?
        .into_iter()
        .find(|k| k.id == key.id && k.active))
}

impl FromRequestParts<ServerState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ServerState,
    ) -> Result<Viewer, Response> {
        let web = parts
            .extensions
            .get::<Arc<Web>>()
            .cloned()
            .ok_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
        // The live stream does not keep an idle session alive.
        let touch = !parts.uri.path().starts_with("/events/");
        let found = session::cookie(&parts.headers, session::SESSION_COOKIE).and_then(|sid| {
            web.sessions
                .get(sid, Instant::now(), touch)
                .map(|s| (sid.to_owned(), s))
        });
        let found = match found {
            // The key is read again on every request, so a revoked key's sessions end at
            // once (the keys table is small: one read of every key).
            Some((sid, mut session)) => match active_key(state, &session.key).await {
                Ok(found) => match found {
                    Some(key) => {
                        session.key = key;
                        Some((sid, session))
                    }
                    None => {
                        web.sessions.close(&sid);
                        None
                    }
                },
                Err(e) => return Err(WebError::from(e).into_response()),
            },
            None => None,
        };
        match found {
            Some((sid, session)) => Ok(Viewer { sid, session, web }),
            None if parts.method == axum::http::Method::GET => {
                Err(Redirect::to("/signin").into_response())
            }
            None => Err(WebError::new(
                StatusCode::FORBIDDEN,
                "you are not signed in (or your session ended): sign in again, then repeat the action",
            )
            .into_response()),
        }
    }
}

impl Viewer {
    /// Refuses unless the form's token is this session's.
    ///
    /// # Errors
    /// 403.
    pub fn check_csrf(&self, token: &str) -> Result<(), WebError> {
        if session::same_token(token, &self.session.csrf) {
            Ok(())
        } else {
            Err(WebError::new(
                StatusCode::FORBIDDEN,
                "the form's security token is missing or belongs to another session: reload the page and send the form again",
            ))
        }
    }

    /// Refuses unless the session's key has `scope`.
    ///
    /// # Errors
    /// 403 naming the scope.
    pub fn require(&self, scope: Scope) -> Result<(), WebError> {
        if self.session.allows(scope) {
            Ok(())
        } else {
            Err(WebError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "key {} lacks the {scope} scope this action needs; sign in with a key that has it",
                    self.session.key.prefix
                ),
            ))
        }
    }

    /// The page chrome for page `title`, with `nav` marked current.
    pub fn chrome(&self, title: impl Into<String>, nav: &'static str) -> Chrome {
        Chrome {
            title: title.into(),
            nav,
            signed_in: Some(line(
                &format!("{} ({})", self.session.key.name, self.session.key.prefix),
                TITLE_MAX,
            )),
            csrf: self.session.csrf.clone(),
            can_admin: self.session.allows(Scope::Admin),
            can_enqueue: self.session.allows(Scope::Enqueue),
        }
    }
}

/// What the layout shows around every page.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// The page's title.
    pub title: String,
    /// The navigation entry marked current.
    pub nav: &'static str,
    /// Who is signed in (key name and prefix), none on the sign-in page.
    pub signed_in: Option<String>,
    /// The session's CSRF token (every form carries it).
    pub csrf: String,
    /// The key may cancel, retry, purge and manage schedules.
    pub can_admin: bool,
    /// The key may enqueue.
    pub can_enqueue: bool,
}

impl Chrome {
    /// The chrome of a page nobody is signed in to.
    pub fn anonymous(title: &str) -> Chrome {
        Chrome {
            title: title.to_owned(),
            nav: "",
            signed_in: None,
            csrf: String::new(),
            can_admin: false,
            can_enqueue: false,
        }
    }

    /// `aria-current` for the navigation entry `name`.
    pub fn current(&self, name: &str) -> &'static str {
        if self.nav == name {
            "page"
        } else {
            "false"
        }
    }
}

/// Renders a template into a response.
pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a dashboard template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be drawn",
            )
                .into_response()
        }
    }
}

/// A page's failure, shown as an error page.
#[derive(Debug)]
pub struct WebError {
    /// The status.
    pub status: StatusCode,
    /// One line saying what was wrong and what to do.
    pub message: String,
}

impl WebError {
    /// An error page with `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> WebError {
        WebError {
            status,
            message: message.into(),
        }
    }
}

impl From<PortError> for WebError {
    fn from(e: PortError) -> WebError {
        ApiError::from(e).into()
    }
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> WebError {
        let mut message = e.detail.message;
        if let Some(a) = e.detail.accepted {
            message = format!("{message} (accepted: {a})");
        }
        WebError::new(e.status, message)
    }
}

/// The error page.
#[derive(Debug, Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    status: u16,
    message: String,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            chrome: Chrome::anonymous("Error"),
            status: self.status.as_u16(),
            message: line(&self.message, LINE_MAX),
        };
        let mut r = render(&page);
        *r.status_mut() = self.status;
        r
    }
}

/// A page's result.
pub type WebResult = Result<Response, WebError>;

/// After a successful form: back to `to` (303, so a reload does not repeat it).
pub fn see_other(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, to.to_owned())],
        "",
    )
        .into_response()
}

/// The server state a handler needs, when a handler takes both.
pub type St = axum::extract::State<ServerState>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(-1_234_567), "-1,234,567");
    }

    #[test]
    fn outside_text_is_one_bounded_line() {
        let s = line("a\u{202e}b\nc\u{1b}[31m", 100);
        assert!(!s.contains('\u{202e}') && !s.contains('\n') && !s.contains('\u{1b}'));
        assert_eq!(line(&"x".repeat(10_000), 200).chars().count(), 200);
    }
}
