//! `POST /v1/embeddings`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::value::RawValue;
use tollgate_providers::{EmbeddingsRequest, Usage};

use super::chat::{failed, json_response};
use super::{
    admit, books, may_use, request_id, resolve, served_by, strip_steering, with_rate_headers,
};
use crate::api::json::ApiJson;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::metering::{Counts, Ending, Endpoint, Meter, Prompt, tokenizer};
use crate::quota::Output;
use crate::server::Arrived;
use crate::state::AppState;

pub async fn embeddings(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    arrived: Option<Extension<Arrived>>,
    headers: HeaderMap,
    ApiJson(mut req): ApiJson<EmbeddingsRequest>,
) -> Result<Response, ApiError> {
    strip_steering(&mut req.extra);
    let model = resolve(&state, &principal, &req.model)?;
    let mut admitted = admit(&state, &principal, &model.name, Output::NONE, || {
        tokenizer::estimate_input(&req.model, &req.input)
    })
    .await?;
    let rate_headers = std::mem::take(&mut admitted.headers);
    let plan = state.routes.plan(model, |name| may_use(&principal, name));
    let mut meter = Meter::start(
        books(&state),
        request_id(&headers),
        principal,
        Endpoint::Embeddings,
        model.name.clone(),
        arrived.map_or_else(tokio::time::Instant::now, |Extension(Arrived(at))| at),
    );
    meter.admitted(admitted);
    let req = Arc::new(req);
    meter.prompt(Prompt::Embeddings(req.clone()));
    meter.upstream_started();
    let served = state.routes.embeddings(&plan, &req).await;
    meter.upstream_finished();
    match served {
        Ok(served) => {
            let target = &served.target;
            served_by(&mut meter, target, served.attempts);
            if let Some(usage) = served.value.usage {
                meter.usage(usage);
            }
            let body = match meter.finish(StatusCode::OK.as_u16(), Ending::Ok) {
                Some(Counts::Estimated(usage)) => with_estimated_usage(served.value.body, &usage),
                _ => served.value.body,
            };
            Ok(with_rate_headers(json_response(body), rate_headers))
        }
        Err(error) => Err(failed(&mut meter, error)),
    }
}

/// The answer with the usage it was billed when that is (in part) the tokenizer's, marked
/// `"estimated": true` as the usage event is (OpenAI clients read the counts and ignore the
/// mark). The vectors are carried as raw JSON, not parsed again.
fn with_estimated_usage(body: Bytes, usage: &Usage) -> Bytes {
    let Ok(mut doc) = serde_json::from_slice::<BTreeMap<String, Box<RawValue>>>(&body) else {
        return body;
    };
    let usage = serde_json::json!({
        "prompt_tokens": usage.prompt_tokens,
        "total_tokens": usage.total_tokens,
        "estimated": true,
    });
    let Ok(usage) = serde_json::value::to_raw_value(&usage) else {
        return body;
    };
    doc.insert("usage".to_owned(), usage);
    serde_json::to_vec(&doc).map_or(body, Bytes::from)
}
