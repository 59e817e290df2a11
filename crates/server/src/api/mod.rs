//! API v1: the routes, each a thin handler over the app's ports with the CLI's meanings,
//! and the OpenAPI 3.1 document generated from their annotations.

pub mod dlq;
pub mod info;
pub mod input;
pub mod results;
pub mod schedules;
pub mod tasks;
pub mod work;
pub mod work_reads;

use axum::routing::{get, post};
use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::ServerState;

/// The routes that need a key (the auth middleware is layered over them).
pub fn routes() -> Router<ServerState> {
    Router::new()
        .route("/v1/types", get(info::types))
        .route("/v1/stats", get(info::stats))
        .route("/v1/workers", get(info::workers))
        .route("/v1/tasks", post(tasks::enqueue).get(tasks::list))
        .route("/v1/tasks/batch", post(tasks::enqueue_batch))
        .route("/v1/tasks/{id}", get(tasks::show))
        .route("/v1/tasks/{id}/cancel", post(tasks::cancel))
        .route("/v1/tasks/{id}/retry", post(tasks::retry))
        .route("/v1/dlq", get(dlq::list))
        .route("/v1/dlq/retry", post(dlq::retry))
        .route("/v1/dlq/purge", post(dlq::purge))
        .route("/v1/results", get(results::list))
        .route("/v1/results/{source_id}", get(results::show))
        .route("/v1/export/results", get(results::export))
        .route("/v1/schedules", get(schedules::list).post(schedules::add))
        .route(
            "/v1/schedules/{name}",
            get(schedules::show).delete(schedules::remove),
        )
        .route("/v1/schedules/{name}/pause", post(schedules::pause))
        .route("/v1/schedules/{name}/resume", post(schedules::resume))
        .route("/v1/schedules/{name}/run", post(schedules::run_now))
        .route("/metrics", get(crate::metrics::scrape))
        .merge(work_routes())
}

/// The remote workers' routes (scope `work`), see [`work`].
fn work_routes() -> Router<ServerState> {
    Router::new()
        .route("/v1/work/claim", post(work::claim))
        .route("/v1/work/claims", post(work::claims))
        .route("/v1/work/completions", post(work::completions))
        .route("/v1/work/start", post(work::start))
        .route("/v1/work/renew", post(work::renew))
        .route("/v1/work/complete", post(work::complete))
        .route("/v1/work/fail", post(work::fail))
        .route("/v1/work/release", post(work::release))
        .route("/v1/work/items", post(work::items))
        .route("/v1/work/log", post(work::log))
        .route("/v1/work/workers/register", post(work::register))
        .route("/v1/work/workers/heartbeat", post(work::heartbeat))
        .route("/v1/work/workers/deregister", post(work::deregister))
        .route("/v1/work/quota", get(work::quota))
        .route("/v1/work/quota/consume", post(work::consume))
        .route("/v1/work/quota/exhausted", post(work::exhausted))
        .route("/v1/work/schedules/fire", post(work::fire))
        .route("/v1/work/tracked", post(work_reads::tracked))
        .route("/v1/work/baselines", post(work_reads::baselines))
}

/// The bearer key scheme.
#[derive(Debug)]
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("pqk_ followed by 64 hex digits, from `prismq keys create`")
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document of API v1.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "PrismQ API",
        version = "1",
        description = "The queue over HTTP: the same meanings as the `prismq` command. Every endpoint but this document needs `Authorization: Bearer KEY` with the scope it names; errors are {\"error\": {\"code\", \"message\", \"field\", \"accepted\"}}."
    ),
    paths(
        info::types, info::stats, info::workers,
        tasks::enqueue, tasks::enqueue_batch, tasks::list, tasks::show, tasks::cancel, tasks::retry,
        dlq::list, dlq::retry, dlq::purge,
        results::list, results::show, results::export,
        schedules::list, schedules::show, schedules::add, schedules::pause, schedules::resume,
        schedules::run_now, schedules::remove,
        crate::metrics::scrape,
        work::claim, work::start, work::renew, work::complete, work::fail, work::release,
        work::items, work::log, work::register, work::heartbeat, work::deregister,
        work::quota, work::consume, work::exhausted, work::fire, work::claims, work::completions,
        work_reads::tracked, work_reads::baselines,
        openapi_json,
    ),
    components(schemas(
        crate::error::ErrorBody, crate::error::ErrorDetail,
        input::TaskLine, tasks::EnqueuedBody, tasks::BatchBody, tasks::TaskPage,
        tasks::TaskWithLog, tasks::TaskBody,
        dlq::RetryRequest, dlq::RetriedBody, dlq::PurgeRequest, dlq::PurgedBody,
        results::ResultPage, results::ResultDetail, results::ResultShow,
        schedules::ScheduleBody, schedules::SchedulesBody, schedules::ScheduleAnswer,
        info::TypesBody, info::TaskTypeBody, info::StatsBody, info::WorkersBody,
        work::ClaimBody, work::ClaimAnswer, work::ClaimedBody, work::LeaseBody, work::RenewBody,
        work::LeaseAnswer, work::CompleteBody, work::SavedAnswer, work::FailBody,
        work::FailAnswer, work::ItemsBody, work::LogBody, work::HeartbeatBody, work::WorkerBody,
        work::ConsumeBody, work::ConsumeAnswer, work::ExhaustedBody, work::QuotaAnswer,
        work::FireBody, work::FiredAnswer, work::ClaimsBody, work::ClaimsAnswer,
        work::CompletionBody, work::CompletionsBody, work::CompletionOutcome,
        work::CompletionsAnswer,
        work_reads::TrackedBody, work_reads::TrackedAnswer, work_reads::BaselinesBody,
        work_reads::BaselinesAnswer,
    )),
    modifiers(&BearerKey),
)]
pub struct ApiDoc;

/// `GET /v1/openapi.json`: this document (no key needed).
#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}
