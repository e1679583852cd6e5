//! `GET /admin/v1/models`: the configured models with their prices per million tokens and
//! fallbacks — the catalogue a tenant's allow-list picks from. Every admin may read it; a
//! provider's name and the upstream's model names are the platform's business and stay out.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct CatalogueModel {
    name: String,
    fallbacks: Vec<String>,
    /// Dollars per million tokens; `null` when the config has no price (counted, not charged).
    price: Option<Price>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Price {
    input_per_mtok: f64,
    output_per_mtok: f64,
    cached_input_per_mtok: Option<f64>,
    cache_write_per_mtok: Option<f64>,
}

#[utoipa::path(
    get,
    path = "/admin/v1/models",
    operation_id = "models_catalogue",
    tag = "tenants",
    responses(
        (status = 200, description = "The configured models with their prices.", body = Vec<CatalogueModel>),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
    ),
    security(("platform_token" = []), ("tenant_admin" = []))
)]
pub async fn catalogue(State(state): State<AppState>) -> Json<Vec<CatalogueModel>> {
    let models = state
        .running()
        .config
        .models
        .iter()
        .map(|model| CatalogueModel {
            name: model.name.clone(),
            fallbacks: model.fallbacks.clone(),
            price: model.price.map(|price| Price {
                input_per_mtok: price.input_per_mtok,
                output_per_mtok: price.output_per_mtok,
                cached_input_per_mtok: price.cached_input_per_mtok,
                cache_write_per_mtok: price.cache_write_per_mtok,
            }),
        })
        .collect();
    Json(models)
}
