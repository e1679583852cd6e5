//! `POST /v1/embeddings`.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use tollgate_providers::EmbeddingsRequest;

use super::chat::{failed, json_response};
use super::{
    admit, books, may_use, request_id, resolve, served_by, strip_steering, with_rate_headers,
};
use crate::api::json::ApiJson;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::metering::{Ending, Endpoint, Meter, Prompt, tokenizer};
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
            meter.finish(StatusCode::OK.as_u16(), Ending::Ok);
            Ok(with_rate_headers(
                json_response(served.value.body),
                rate_headers,
            ))
        }
        Err(error) => Err(failed(&mut meter, error)),
    }
}
