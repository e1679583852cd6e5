//! `POST /v1/embeddings`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde_json::value::RawValue;
use tollgate_providers::{EmbeddingsRequest, Provider};

use super::call::{Call, Caller, failed, json_response};
use super::{served_by, strip_steering};
use crate::api::json::ApiJson;
use crate::error::ApiError;
use crate::metering::{Ending, Endpoint, Prompt, Tally};
use crate::quota::Output;
use crate::state::AppState;

#[utoipa::path(
    post,
    path = "/v1/embeddings",
    operation_id = "embeddings",
    tag = "data plane",
    request_body = crate::api::openapi::EmbeddingsRequest,
    responses(
        (status = 200, description = "OpenAI's list of embeddings.", body = crate::api::openapi::UpstreamAnswer),
        crate::api::openapi::RoutedFailures,
    ),
    security(("bearer" = []))
)]
pub async fn embeddings(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(mut req): ApiJson<EmbeddingsRequest>,
) -> Result<Response, ApiError> {
    strip_steering(&mut req.extra);
    let req = Arc::new(req);
    let prompt = Prompt::Embeddings(req.clone());
    let mut call = Call::begin(
        &state,
        caller,
        Endpoint::Embeddings,
        &req.model,
        Output::NONE,
        prompt,
    )
    .await?;
    call.meter.upstream_started();
    let served = call
        .routes()
        .call(&call.plan, |target| {
            let req = &*req;
            async move {
                let client = &target.provider.client;
                client.embeddings(req, &target.upstream_model).await
            }
        })
        .await;
    call.meter.upstream_finished();
    match served {
        Ok(served) => {
            let meter = &mut call.meter;
            served_by(meter, &served.target, served.attempts);
            if let Some(usage) = served.value.usage {
                meter.usage(usage);
            }
            let body = match meter.finish(StatusCode::OK.as_u16(), Ending::Ok) {
                Some(billed) if billed.estimated => {
                    with_estimated_usage(served.value.body, &billed.tally)
                }
                _ => served.value.body,
            };
            Ok(call.respond(json_response(body)))
        }
        Err(error) => Err(failed(&mut call.meter, error)),
    }
}

/// The answer with the usage it was billed when that is (in part) the tokenizer's, marked
/// `"estimated": true` as the usage event is (OpenAI clients read the counts and ignore the
/// mark). The vectors are carried as raw JSON, not parsed again.
fn with_estimated_usage(body: Bytes, billed: &Tally) -> Bytes {
    let Ok(mut doc) = serde_json::from_slice::<BTreeMap<String, Box<RawValue>>>(&body) else {
        return body;
    };
    let usage = serde_json::json!({
        "prompt_tokens": billed.prompt_tokens,
        "total_tokens": billed.total_tokens,
        "estimated": true,
    });
    let Ok(usage) = serde_json::value::to_raw_value(&usage) else {
        return body;
    };
    doc.insert("usage".to_owned(), usage);
    serde_json::to_vec(&doc).map_or(body, Bytes::from)
}
