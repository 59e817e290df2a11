//! One request to the server: the key as a sensitive bearer header, JSON both ways, retries
//! with backoff on transport errors, 429 and 5xx answers that say "later", and the API's
//! error body (`{"error": {"code", "message", "field", "accepted"}}`) mapped to the
//! domain's [`PortError`] by its status and code.

use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use prismq_domain::text::{one_line, MESSAGE_MAX_CHARS};
use prismq_domain::{PortError, TaskId, ValidationError};

use crate::RemoteOptions;

/// The longest one ordinary call may take before it counts as a transport error.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The first and the longest pause between two tries of one call.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// The longest `Retry-After` honoured inside one call.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(5);

/// Why the client could not be built or the server not used (outside the ports, which
/// answer [`PortError`]s).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
    /// The key was refused (401 or 403).
    #[error("the server at {server} refused the API key: {message}")]
    Refused {
        /// The server's URL.
        server: String,
        /// The server's message.
        message: String,
    },
    /// No answer (connection refused, reset, timed out).
    #[error("cannot reach the PrismQ server at {server}: {message}; check the URL and that `prismq serve` runs there")]
    Unreachable {
        /// The server's URL.
        server: String,
        /// What failed.
        message: String,
    },
    /// TLS refused the connection (the server's certificate is not trusted here, or the
    /// handshake failed): trying again cannot help.
    #[error("cannot reach the PrismQ server at {server}: {message}; the server's TLS certificate is not trusted here: pass the certificate of the CA that signed it with --ca-cert FILE (or worker.server_ca_cert)")]
    Untrusted {
        /// The server's URL.
        server: String,
        /// What TLS said.
        message: String,
    },
    /// Any other failed answer.
    #[error("the server at {server} answered {status}: {message}")]
    Server {
        /// The server's URL.
        server: String,
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
}

/// The server's error body.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorDetail {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    accepted: Option<String>,
}

pub(crate) struct Http {
    client: reqwest::Client,
    pub(crate) base: url::Url,
    auth: HeaderValue,
    retry_for: Duration,
}

/// A failed try: worth another one, or final.
enum Try {
    Again(PortError, Option<Duration>),
    Final(PortError),
}

impl Http {
    pub(crate) fn new(o: &RemoteOptions) -> Result<Http, ClientError> {
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", o.api_key.expose()))
            .map_err(|_| ClientError::Build("the API key is not a header value".into()))?;
        auth.set_sensitive(true);
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("prismq-client/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &o.ca {
            for cert in &ca.certs {
                builder = builder.add_root_certificate(cert.clone());
            }
        }
        let client = builder
            .build()
            .map_err(|e| ClientError::Build(e.to_string()))?;
        Ok(Http {
            client,
            base: o.server.clone(),
            auth,
            retry_for: o.retry_for,
        })
    }

    fn url(&self, path: &str) -> Result<url::Url, PortError> {
        self.base
            .join(path)
            .map_err(|e| PortError::Unavailable(format!("cannot build the URL of {path}: {e}")))
    }

    /// `POST path` with `body` as JSON, the answer's body as `T`.
    pub(crate) async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        task: Option<TaskId>,
    ) -> Result<T, PortError> {
        let bytes = self
            .call(Method::POST, path, Some(body), CALL_TIMEOUT, task)
            .await?;
        decode(path, &bytes)
    }

    /// `POST path` with `body`, expecting no answer body (204).
    pub(crate) async fn post_empty<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
        task: Option<TaskId>,
    ) -> Result<(), PortError> {
        self.call(Method::POST, path, Some(body), CALL_TIMEOUT, task)
            .await
            .map(drop)
    }

    /// `POST path` that may wait on the server (the claim's long poll) up to `wait`.
    pub(crate) async fn post_waiting<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        wait: Duration,
    ) -> Result<T, PortError> {
        let bytes = self
            .call(Method::POST, path, Some(body), CALL_TIMEOUT + wait, None)
            .await?;
        decode(path, &bytes)
    }

    /// `GET path`, the answer's body as `T`.
    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, PortError> {
        let bytes = self
            .call::<()>(Method::GET, path, None, CALL_TIMEOUT, None)
            .await?;
        decode(path, &bytes)
    }

    /// One try of `GET path`, for the start-up check.
    pub(crate) async fn probe(&self, path: &str) -> Result<(), ClientError> {
        let server = self.base.to_string();
        let url = self
            .url(path)
            .map_err(|e| ClientError::Build(e.to_string()))?;
        let r = self
            .client
            .get(url)
            .header(AUTHORIZATION, self.auth.clone())
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(|e| {
                let message = transport_message(&e);
                if is_tls_refusal(&e) {
                    ClientError::Untrusted {
                        server: server.clone(),
                        message,
                    }
                } else {
                    ClientError::Unreachable {
                        server: server.clone(),
                        message,
                    }
                }
            })?;
        let status = r.status();
        if status.is_success() {
            return Ok(());
        }
        let body = r.bytes().await.unwrap_or_default();
        let detail = serde_json::from_slice::<ErrorBody>(&body)
            .unwrap_or_default()
            .error;
        let message = one_line(&detail.message, MESSAGE_MAX_CHARS);
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            Err(ClientError::Refused { server, message })
        } else {
            Err(ClientError::Server {
                server,
                status: status.as_u16(),
                message,
            })
        }
    }

    async fn call<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        timeout: Duration,
        task: Option<TaskId>,
    ) -> Result<Vec<u8>, PortError> {
        let url = self.url(path)?;
        let payload = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| PortError::Unavailable(format!("cannot encode the request: {e}")))?;
        let give_up = Instant::now() + self.retry_for;
        let mut pause = BACKOFF_MIN;
        loop {
            match self
                .once(method.clone(), url.clone(), payload.clone(), timeout, task)
                .await
            {
                Ok(bytes) => return Ok(bytes),
                Err(Try::Final(e)) => return Err(e),
                Err(Try::Again(e, after)) => {
                    let now = Instant::now();
                    if now >= give_up {
                        return Err(e);
                    }
                    let wait = after
                        .map_or(pause, |a| a.min(RETRY_AFTER_MAX).max(pause))
                        .min(give_up - now);
                    tracing::debug!(error = %e, ?wait, "the server call failed; trying again");
                    tokio::time::sleep(wait).await;
                    pause = (pause * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    async fn once(
        &self,
        method: Method,
        url: url::Url,
        payload: Option<Vec<u8>>,
        timeout: Duration,
        task: Option<TaskId>,
    ) -> Result<Vec<u8>, Try> {
        let mut req = self
            .client
            .request(method, url)
            .header(AUTHORIZATION, self.auth.clone())
            .timeout(timeout);
        if let Some(p) = payload {
            req = req.header(CONTENT_TYPE, "application/json").body(p);
        }
        let r = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let message = format!(
                    "cannot reach the PrismQ server at {}: {}",
                    self.base,
                    transport_message(&e)
                );
                if is_tls_refusal(&e) {
                    // Trying again cannot help: say what would.
                    return Err(Try::Final(PortError::Unavailable(format!(
                        "{message}; the server's TLS certificate is not trusted here: pass the certificate of the CA that signed it with --ca-cert FILE (or worker.server_ca_cert)"
                    ))));
                }
                return Err(Try::Again(PortError::Unavailable(message), None));
            }
        };
        let status = r.status();
        let after = r
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = match r.bytes().await {
            Ok(b) => b.to_vec(),
            Err(e) => {
                let message = format!(
                    "the answer of the PrismQ server at {} broke off: {}",
                    self.base,
                    transport_message(&e)
                );
                return Err(Try::Again(PortError::Unavailable(message), None));
            }
        };
        if status.is_success() {
            return Ok(body);
        }
        let detail = serde_json::from_slice::<ErrorBody>(&body)
            .unwrap_or_default()
            .error;
        let e = port_error(status, detail, task);
        let again = matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::BAD_GATEWAY
                | StatusCode::GATEWAY_TIMEOUT
                | StatusCode::REQUEST_TIMEOUT
        );
        Err(if again {
            Try::Again(e, after)
        } else {
            Try::Final(e)
        })
    }
}

fn decode<T: DeserializeOwned>(path: &str, bytes: &[u8]) -> Result<T, PortError> {
    serde_json::from_slice(bytes).map_err(|e| {
        PortError::Unavailable(format!(
            "the server's answer to {path} is not what this client reads ({e}); is it a `prismq serve` of the same version?"
        ))
    })
}

/// Whether TLS refused the connection (an untrusted or mismatched certificate, a failed
/// handshake): a refusal that trying again cannot change.
fn is_tls_refusal(e: &reqwest::Error) -> bool {
    /// `e` is rustls' error, or I/O errors wrapped around one (they nest: hyper's connect
    /// error holds an I/O error that holds tokio-rustls' I/O error that holds rustls').
    fn is_rustls(e: &(dyn std::error::Error + 'static)) -> bool {
        if e.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        e.downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .is_some_and(|inner| is_rustls(inner))
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if is_rustls(s) {
            return true;
        }
        source = s.source();
    }
    false
}

/// What failed, without the URL (the caller names the server) and without any header.
fn transport_message(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "the connection broke"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        what.to_owned()
    } else {
        one_line(&format!("{what} ({cause})"), MESSAGE_MAX_CHARS)
    }
}

/// The domain's error for an error answer.
pub(crate) fn port_error(status: StatusCode, d: ErrorDetail, task: Option<TaskId>) -> PortError {
    let message = one_line(&d.message, MESSAGE_MAX_CHARS);
    let field = d.field.as_deref().map(|f| one_line(f, 200));
    let accepted = d
        .accepted
        .as_deref()
        .map(|a| one_line(a, MESSAGE_MAX_CHARS));
    match (status, d.code.as_str()) {
        (StatusCode::UNAUTHORIZED, _) => PortError::Invalid(ValidationError::new(
            "api key",
            format!("the server refused it ({message})"),
            "an active key with the work scope, from `prismq keys create --scope work` on the server, in --api-key-file or PRISMQ_API_KEY",
        )),
        (StatusCode::FORBIDDEN, _) => PortError::Invalid(ValidationError::new(
            "api key",
            format!("the server refused it ({message})"),
            "a key with the work scope (`prismq keys create --scope work`)",
        )),
        (StatusCode::NOT_FOUND, _) => PortError::NotFound(message),
        (StatusCode::CONFLICT, "lease_lost") => PortError::LeaseLost {
            task_id: task.map_or(0, |t| t.0),
        },
        (StatusCode::CONFLICT, "duplicate") => PortError::Duplicate(message),
        (StatusCode::UNPROCESSABLE_ENTITY | StatusCode::PAYLOAD_TOO_LARGE, _)
        | (StatusCode::CONFLICT, _) => {
            let field = field.unwrap_or_else(|| "request".to_owned());
            let accepted = accepted.unwrap_or_default();
            // The server's message is the whole "invalid F: P; accepted: A" line: keep P.
            let problem = message
                .strip_prefix(&format!("invalid {field}: "))
                .map(|p| p.strip_suffix(&format!("; accepted: {accepted}")).unwrap_or(p))
                .unwrap_or(&message)
                .to_owned();
            PortError::Invalid(ValidationError::new(field, problem, accepted))
        }
        (StatusCode::TOO_MANY_REQUESTS, _) => PortError::Busy(format!(
            "the server rate-limits this key ({message}); raise it with `prismq keys create --rate-limit N`"
        )),
        (StatusCode::SERVICE_UNAVAILABLE, "busy") => PortError::Busy(message),
        _ => PortError::Unavailable(format!("the server answered {status}: {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(
        code: &str,
        message: &str,
        field: Option<&str>,
        accepted: Option<&str>,
    ) -> ErrorDetail {
        ErrorDetail {
            code: code.into(),
            message: message.into(),
            field: field.map(Into::into),
            accepted: accepted.map(Into::into),
        }
    }

    #[test]
    fn error_answers_map_to_port_errors_by_status_and_code() {
        let lost = port_error(
            StatusCode::CONFLICT,
            detail("lease_lost", "lease lost on task 7", None, None),
            Some(TaskId(7)),
        );
        assert_eq!(lost, PortError::LeaseLost { task_id: 7 });
        let invalid = port_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            detail(
                "invalid",
                "invalid lease_ms: 0 ms is out of range; accepted: 1 to 9",
                Some("lease_ms"),
                Some("1 to 9"),
            ),
            None,
        );
        assert_eq!(
            invalid.to_string(),
            "invalid lease_ms: 0 ms is out of range; accepted: 1 to 9"
        );
        assert!(
            port_error(StatusCode::TOO_MANY_REQUESTS, ErrorDetail::default(), None).is_transient()
        );
        assert!(port_error(
            StatusCode::SERVICE_UNAVAILABLE,
            detail("unavailable", "x", None, None),
            None
        )
        .is_transient());
        let refused = port_error(
            StatusCode::UNAUTHORIZED,
            detail("unauthorized", "unknown key\u{1b}[31m", None, None),
            None,
        );
        assert!(!refused.is_transient());
        assert!(!refused.to_string().contains('\u{1b}'), "{refused}");
        assert!(matches!(
            port_error(
                StatusCode::NOT_FOUND,
                detail("not_found", "worker w", None, None),
                None
            ),
            PortError::NotFound(_)
        ));
    }
}
