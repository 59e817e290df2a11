//! Sign-in with an API key, and sign-out. The sign-in form carries its own CSRF token
//! (a random value in a short-lived `SameSite=Strict` cookie and in the form, compared in
//! constant time), so a page on another site cannot sign a browser in with its own key.

use std::sync::Arc;
use std::time::Instant;

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use prismq_domain::ports::{PresentedKey, Scope};

use super::page::{render, see_other, Chrome, Viewer, WebError, WebResult};
use super::session::{self, SESSION_COOKIE, SIGNIN_COOKIE};
use super::Web;
use crate::ServerState;

#[derive(Debug, Template)]
#[template(path = "signin.html")]
struct SigninPage {
    chrome: Chrome,
    token: String,
    error: Option<String>,
}

fn page(web: &Web, error: Option<String>, status: StatusCode) -> Response {
    let token = session::random_token();
    let mut r = render(&SigninPage {
        chrome: Chrome::anonymous("Sign in"),
        token: token.clone(),
        error,
    });
    *r.status_mut() = status;
    session::set_cookie(r.headers_mut(), SIGNIN_COOKIE, &token, web.secure);
    r
}

/// `GET /signin`.
pub async fn form(Extension(web): Extension<Arc<Web>>) -> Response {
    page(&web, None, StatusCode::OK)
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct SigninForm {
    csrf: String,
    key: String,
}

/// `POST /signin`: a valid, active key with the `read` scope opens a session.
pub async fn submit(
    State(state): State<ServerState>,
    Extension(web): Extension<Arc<Web>>,
    headers: HeaderMap,
    form: Result<Form<SigninForm>, FormRejection>,
) -> WebResult {
    let Ok(Form(f)) = form else {
        return Ok(page(
            &web,
            Some("the form was incomplete: enter an API key".into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    };
    let expected = session::cookie(&headers, SIGNIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !session::same_token(&f.csrf, expected) {
        return Err(WebError::new(
            StatusCode::FORBIDDEN,
            "the sign-in form's security token is missing or stale: open the sign-in page again",
        ));
    }
    let refused = "the API key is malformed, unknown or revoked; create one with `prismq keys create --scope read`";
    let Ok(presented) = PresentedKey::parse(f.key.trim()) else {
        return Ok(page(&web, Some(refused.into()), StatusCode::UNAUTHORIZED));
    };
    let Some(key) = state.app.keys.verify(&presented).await? else {
        return Ok(page(&web, Some(refused.into()), StatusCode::UNAUTHORIZED));
    };
    if !key.allows(Scope::Read) {
        return Ok(page(
            &web,
            Some(format!(
                "key {} lacks the read scope the dashboard needs; create a key with --scope read",
                key.prefix
            )),
            StatusCode::FORBIDDEN,
        ));
    }
    state.meter.charge(&key, Instant::now())?;
    let sid = web.sessions.open(key, Instant::now());
    let mut r = see_other("/");
    session::set_cookie(r.headers_mut(), SESSION_COOKIE, &sid, web.secure);
    session::set_cookie(r.headers_mut(), SIGNIN_COOKIE, "", web.secure);
    Ok(r)
}

/// A form that carries only its token.
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    /// The session's CSRF token.
    #[serde(default)]
    pub csrf: String,
}

/// `POST /signout`: ends the session.
pub async fn signout(viewer: Viewer, form: Result<Form<TokenForm>, FormRejection>) -> WebResult {
    let token = form.map(|Form(f)| f.csrf).unwrap_or_default();
    viewer.check_csrf(&token)?;
    viewer.web.sessions.close(&viewer.sid);
    let mut r = see_other("/signin");
    session::set_cookie(r.headers_mut(), SESSION_COOKIE, "", viewer.web.secure);
    Ok(r.into_response())
}
