//! Classifies a Data API error response into a [`SourceError`] from its status code,
//! `errors[].reason`, `status`, `details[].reason` and `details[].metadata.quota_limit`,
//! never from its message text.

use prismq_domain::Timestamp;
use serde::Deserialize;

use super::quota::Bucket;
use super::SourceError;

#[derive(Debug, Default, Deserialize)]
struct Envelope {
    #[serde(default)]
    error: ErrorBody,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorItem>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    details: Vec<Detail>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorItem {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    location: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Detail {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    metadata: Option<Metadata>,
}

#[derive(Debug, Default, Deserialize)]
struct Metadata {
    #[serde(default)]
    quota_limit: Option<String>,
}

/// What the classification decided. Quota exhaustion is returned as the bucket to mark,
/// because the reset instant comes from the clock.
#[derive(Debug, Clone, PartialEq)]
pub enum Classified {
    /// The bucket is spent until the next reset.
    QuotaExhausted(Bucket),
    /// The chart does not exist for this region and category: an empty result.
    ChartUnavailable,
    /// Any other failure.
    Error(SourceError),
}

/// Classifies an error response. `bucket` is the bucket the request was charged to;
/// `retry_at` is the instant a Retry-After header named, if any.
pub fn classify(
    status: u16,
    body: &[u8],
    bucket: Bucket,
    retry_at: Option<Timestamp>,
) -> Classified {
    let env: Envelope = serde_json::from_slice(body).unwrap_or_default();
    let e = env.error;
    let reasons: Vec<&str> = e
        .errors
        .iter()
        .filter_map(|i| i.reason.as_deref())
        .collect();
    let has = |r: &str| reasons.contains(&r);
    let detail_reasons: Vec<&str> = e
        .details
        .iter()
        .filter_map(|d| d.reason.as_deref())
        .collect();
    let quota_limit = e
        .details
        .iter()
        .filter_map(|d| d.metadata.as_ref()?.quota_limit.as_deref())
        .next();
    let first_reason = reasons.first().copied().unwrap_or("unknown").to_string();
    let location = e.errors.first().and_then(|i| i.location.clone());

    if has("quotaExceeded") {
        // batchGetStats has its own bucket: its refusal says that one is spent.
        let spent = if bucket == Bucket::Stats {
            Bucket::Stats
        } else {
            Bucket::General
        };
        return Classified::QuotaExhausted(spent);
    }
    let throttled = status == 429
        || has("rateLimitExceeded")
        || has("userRateLimitExceeded")
        || detail_reasons.contains(&"RATE_LIMIT_EXCEEDED");
    if throttled {
        if let Some(limit) = quota_limit.filter(|l| l.contains("PerDay")) {
            let spent = if limit.contains("Search") {
                Bucket::Search
            } else {
                bucket
            };
            return Classified::QuotaExhausted(spent);
        }
        return Classified::Error(SourceError::RateLimited { retry_at });
    }
    if has("keyInvalid") || detail_reasons.contains(&"API_KEY_INVALID") {
        return Classified::Error(SourceError::KeyInvalid);
    }
    if has("accessNotConfigured") || detail_reasons.contains(&"SERVICE_DISABLED") {
        return Classified::Error(SourceError::ApiDisabled);
    }
    if has("videoChartNotFound") {
        return Classified::ChartUnavailable;
    }
    if let Some(what) = ["playlistNotFound", "channelNotFound", "videoNotFound"]
        .into_iter()
        .find(|r| has(r))
    {
        return Classified::Error(SourceError::NotFound {
            what: what.to_string(),
        });
    }
    if status >= 500 || status == 408 || has("backendError") {
        return Classified::Error(SourceError::Transient { status });
    }
    if status == 401 || status == 403 {
        let reason = detail_reasons
            .iter()
            .find(|r| r.starts_with("API_KEY_"))
            .map(|r| r.to_string())
            .or_else(|| e.status.clone().filter(|_| first_reason == "unknown"))
            .unwrap_or(first_reason);
        return Classified::Error(SourceError::Forbidden { reason });
    }
    if status == 404 {
        return Classified::Error(SourceError::NotFound { what: first_reason });
    }
    Classified::Error(SourceError::BadRequest {
        status,
        reason: first_reason,
        location,
    })
}
