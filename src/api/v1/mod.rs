//! The OpenAI-compatible data plane. Each handler parses its body (400/413), begins a
//! [`call::Call`] — the model must exist (404) and be allowed to the tenant (403), the quotas
//! admit it (429), the meter starts — then routes and renders the answer in its own shape.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde_json::{Map, Value, json};

use axum::response::Response;
use http::{HeaderName, HeaderValue};

use crate::auth::Principal;
use crate::clock::Timestamp;
use crate::error::{ApiError, ErrorKind};
use crate::metering::{Books, Meter};
use crate::quota::{AdmitError, Admitted, Exceeded, MinuteLimits, Output, Window};
use crate::reload::Running;
use crate::routing::{Model, Target};
use crate::state::AppState;

mod call;
pub(crate) mod chat;
pub(crate) mod completions;
pub(crate) mod embeddings;
pub(crate) mod messages;
pub(crate) mod responses;
mod sse;

pub use chat::chat_completions;
pub use completions::completions;
pub use embeddings::embeddings;
pub use messages::{count_tokens, envelope as anthropic_envelope, messages};
pub use responses::responses;

#[utoipa::path(
    get,
    path = "/v1/models",
    operation_id = "models",
    tag = "data plane",
    responses(
        (status = 200, description = "The models the caller's tenant may use.", body = crate::api::openapi::ModelList),
        (status = 401, response = crate::api::openapi::Unauthorized),
    ),
    security(("bearer" = []))
)]
/// `GET /v1/models`: the configured models the caller's tenant may use.
pub async fn models(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Json<Value> {
    let data: Vec<Value> = state
        .running()
        .config
        .models
        .iter()
        .filter(|model| principal.may_use(&model.name))
        .map(|model| model_object(&model.name))
        .collect();
    Json(json!({ "object": "list", "data": data }))
}

#[utoipa::path(
    get,
    path = "/v1/models/{id}",
    operation_id = "model",
    tag = "data plane",
    params(("id" = String, Path, description = "The model's name (it may hold a `/`).")),
    responses(
        (status = 200, description = "The model.", body = crate::api::openapi::ModelObject),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("bearer" = []))
)]
/// `GET /v1/models/{id}`: one model, as the list shows it. An unknown model and one the
/// caller may not use get the same 404, so nobody learns what exists. The id is the
/// rest of the path (model names may hold a `/`), percent-decoded.
pub async fn model(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = id.map(|Path(id)| id).unwrap_or_default();
    state
        .running()
        .config
        .models
        .iter()
        .find(|model| model.name == id && principal.may_use(&model.name))
        .map(|model| Json(model_object(&model.name)))
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::ModelNotFound,
                format!("The model `{}` does not exist.", shorten(&id)),
            )
        })
}

/// OpenAI's model object.
fn model_object(name: &str) -> Value {
    json!({
        "id": name,
        "object": "model",
        "created": 0,
        "owned_by": "tollgate",
    })
}

/// Body fields that some SDKs and proxies read as "send this request elsewhere / with these
/// credentials / headers". tollgate never interprets them, and removes them so an
/// OpenAI-compatible upstream does not either.
const STEERING_FIELDS: [&str; 12] = [
    "api_base",
    "base_url",
    "api_key",
    "api_version",
    "api_type",
    "organization",
    "extra_headers",
    "headers",
    "custom_llm_provider",
    "deployment_id",
    "azure_ad_token",
    "aws_secret_access_key",
];

pub(crate) fn strip_steering(extra: &mut Map<String, Value>) {
    if extra.is_empty() {
        return;
    }
    for field in STEERING_FIELDS {
        extra.remove(field);
    }
}

/// The model the request names: an unknown name is 404 (a URL is just an unknown name), then
/// one the caller may not use (their tenant's allow-list narrowed by their groups) is 403, in
/// the contract's order.
pub(crate) fn resolve<'a>(
    running: &'a Running,
    principal: &Principal,
    name: &str,
) -> Result<&'a Model, ApiError> {
    let model = running.routes.model(name).ok_or_else(|| {
        ApiError::new(
            ErrorKind::ModelNotFound,
            format!("The model `{}` does not exist.", shorten(name)),
        )
    })?;
    if !principal.may_use(name) {
        return Err(ApiError::new(
            ErrorKind::ModelNotAllowed,
            format!("You may not use the model `{}`.", model.name),
        ));
    }
    Ok(model)
}

/// Notes on the meter which target served (or last failed to serve) the request.
pub(crate) fn served_by(meter: &mut Meter, target: &Target, attempts: u32) {
    meter.target(
        &target.model,
        &target.provider.name,
        &target.upstream_model,
        attempts,
    );
}

/// Where this request's numbers go when it ends, at the prices of the configuration it began
/// under.
pub(crate) fn books(state: &AppState, running: &Running) -> Books {
    Books {
        usage: state.usage.clone(),
        prices: running.prices.clone(),
        quotas: state.quotas.clone(),
    }
}

/// The output a request asks for, checked against `quota.max_output_tokens`: a cap above it or
/// an `n` out of range is a 400 naming the field.
pub(crate) fn output(
    state: &AppState,
    caps: &[(&'static str, Option<u64>)],
    n: Option<u64>,
) -> Result<Output, ApiError> {
    Output::parse(caps, n, &state.running().config.quota)
        .map_err(|error| ApiError::invalid_field(error.field(), error.to_string()))
}

/// Reserves the request against the caller's quotas and rate limits; a refusal is the 429.
/// `prompt_tokens` (the tokenizer's count) runs only when a token or cost limit applies.
pub(crate) async fn admit(
    state: &AppState,
    running: &Running,
    principal: &Principal,
    model: &str,
    output: Output,
    prompt_tokens: impl FnOnce() -> u64,
) -> Result<Admitted, ApiError> {
    let estimate = || {
        output.reservation(
            prompt_tokens(),
            running.config.quota.prompt_margin_percent,
            running.prices.get(model),
        )
    };
    match state.quotas.admit(principal, estimate).await {
        Ok(admitted) => Ok(admitted),
        Err(AdmitError::Exceeded(exceeded)) => Err(refusal(&exceeded)),
        Err(AdmitError::Unavailable(error)) => {
            tracing::error!(%error, "quota limits or counters unavailable; refusing (fail closed)");
            Err(ApiError::new(
                ErrorKind::Unavailable,
                "The service is temporarily unavailable.",
            )
            .with_retry_after(1))
        }
    }
}

/// The 429 for a limit: `rate_limited` for per-minute limits, `quota_exceeded` for periods.
fn refusal(exceeded: &Exceeded) -> ApiError {
    let whose = if exceeded.scope.subject.is_some() {
        "your user"
    } else {
        "your tenant"
    };
    let wait = (exceeded.resets_at.millis() - Timestamp::now().millis()).max(0);
    let seconds = u64::try_from(wait).unwrap_or(0).div_ceil(1000).max(1);
    metrics::counter!("tollgate_quota_rejections_total", "limit" => exceeded.kind.name())
        .increment(1);
    tracing::info!(tenant = %exceeded.scope.tenant, subject = exceeded.scope.subject.as_deref(),
        limit = exceeded.kind.name(), max = exceeded.limit, used = exceeded.used,
        "request refused by a quota");
    let (kind, message) = if exceeded.kind.window() == Window::Minute {
        (
            ErrorKind::RateLimited,
            format!(
                "Rate limit reached: {} for {whose} is {}.",
                exceeded.kind.name(),
                exceeded.limit
            ),
        )
    } else {
        (
            ErrorKind::QuotaExceeded,
            format!(
                "Quota exceeded: {} for {whose} is used up until {}.",
                exceeded.kind.name(),
                exceeded.resets_at.to_rfc3339()
            ),
        )
    };
    ApiError::new(kind, message).with_retry_after(seconds)
}

/// Adds OpenAI's `x-ratelimit-*` headers for the caller's per-minute limits to a response:
/// limit, remaining (when known) and reset, for requests and for tokens.
pub(crate) fn with_rate_headers(mut response: Response, limits: &MinuteLimits) -> Response {
    if limits.requests.is_none() && limits.tokens.is_none() {
        return response;
    }
    // Parsed once: a name given as text is validated again on every insert.
    static REQUESTS: [HeaderName; 3] = [
        HeaderName::from_static("x-ratelimit-limit-requests"),
        HeaderName::from_static("x-ratelimit-remaining-requests"),
        HeaderName::from_static("x-ratelimit-reset-requests"),
    ];
    static TOKENS: [HeaderName; 3] = [
        HeaderName::from_static("x-ratelimit-limit-tokens"),
        HeaderName::from_static("x-ratelimit-remaining-tokens"),
        HeaderName::from_static("x-ratelimit-reset-tokens"),
    ];
    let headers = response.headers_mut();
    headers.reserve(6);
    // Digits and an `s`: always a valid header value. Built once for both limits.
    let reset = HeaderValue::try_from(format!("{}s", limits.reset_seconds)).ok();
    for (standing, [limit, remaining, resets]) in
        [(limits.requests, &REQUESTS), (limits.tokens, &TOKENS)]
    {
        let Some(standing) = standing else { continue };
        headers.insert(limit.clone(), HeaderValue::from(standing.limit));
        if let Some(left) = standing.remaining {
            headers.insert(remaining.clone(), HeaderValue::from(left));
        }
        if let Some(reset) = &reset {
            headers.insert(resets.clone(), reset.clone());
        }
    }
    response
}

/// Echoing a client's string back is fine; echoing a megabyte of it is not.
fn shorten(text: &str) -> &str {
    match text.char_indices().nth(100) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}
