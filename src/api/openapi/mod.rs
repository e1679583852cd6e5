//! The OpenAPI 3.1 document of the admin API, SCIM and the data plane, generated from the code:
//! each handler's `#[utoipa::path]` attribute and the `ToSchema` of the types it reads and
//! answers with. Served at `GET /openapi.json` and committed as `docs/openapi.json`; a test keeps
//! the two equal, and CI fuzzes the gateway against it with schemathesis.

mod dataplane;
mod responses;
mod scim;

use std::sync::LazyLock;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

pub use dataplane::*;
pub use responses::*;
pub use scim::*;

use crate::api::{admin, health, v1};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tollgate",
        description = "A multi-tenant LLM gateway: the OpenAI- and Anthropic-style data plane, \
                       the admin API under `/admin/v1`, and SCIM 2.0 per tenant under \
                       `/scim/v2/{tenant}`. Errors use OpenAI's envelope, except on \
                       `/v1/messages*` (Anthropic's) and under `/scim` (SCIM's)."
    ),
    paths(
        serve,
        health::healthz,
        health::readyz,
        v1::models,
        v1::model,
        v1::chat::chat_completions,
        v1::embeddings::embeddings,
        v1::responses::responses,
        v1::completions::completions,
        v1::messages::messages,
        v1::messages::count_tokens,
        admin::tenants::create,
        admin::tenants::list,
        admin::tenants::get,
        admin::tenants::update,
        admin::tenants::delete,
        admin::tenants::set_models,
        admin::tenants::models,
        admin::issuers::create,
        admin::issuers::list,
        admin::issuers::get,
        admin::issuers::delete,
        admin::issuers::discover,
        admin::explain::explain,
        admin::failures::all,
        admin::failures::tenant,
        admin::models::catalogue,
        admin::quotas::put_tenant,
        admin::quotas::get_tenant,
        admin::quotas::put_default,
        admin::quotas::get_default,
        admin::quotas::put_user,
        admin::quotas::get_user,
        admin::users::list,
        admin::users::upsert,
        admin::users::get,
        admin::users::delete,
        admin::users::revoke_tokens,
        admin::users::revoke_token,
        admin::users::revoked_tokens,
        admin::keys::create,
        admin::keys::list,
        admin::keys::revoke,
        admin::usage::tenant_report,
        admin::usage::export,
        admin::audit::events,
        admin::scim::create_token,
        admin::scim::list_tokens,
        admin::scim::revoke_token,
        admin::scim::put_settings,
        admin::scim::get_settings,
        admin::webhooks::create,
        admin::webhooks::list,
        admin::webhooks::get,
        admin::webhooks::delete,
        admin::webhooks::deliveries,
        admin::groups::list,
        admin::groups::put,
        admin::groups::get,
        admin::groups::delete,
        admin::config::reload,
        crate::scim::discovery_config,
        crate::scim::discovery_resource_types,
        crate::scim::discovery_resource_type,
        crate::scim::discovery_schemas,
        crate::scim::discovery_schema,
        crate::scim::search,
        crate::scim::users::list,
        crate::scim::users::create,
        crate::scim::users::get,
        crate::scim::users::replace,
        crate::scim::users::patch,
        crate::scim::users::delete,
        crate::scim::groups::list,
        crate::scim::groups::create,
        crate::scim::groups::get,
        crate::scim::groups::replace,
        crate::scim::groups::patch,
        crate::scim::groups::delete,
    ),
    // The errors' schemas, which the shared responses name but do not bring along.
    components(schemas(crate::error::Envelope, ScimError, AnthropicError), responses(
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        TooManyRequests,
        UpstreamFailed,
        Unavailable,
        ScimErrorResponse,
        AnthropicErrorResponse,
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "meta", description = "Health, readiness and this document."),
        (name = "data plane", description = "What applications call: OpenAI's and Anthropic's dialects."),
        (name = "tenants", description = "Tenants and their model allow-lists."),
        (name = "issuers", description = "The identity providers whose tokens are accepted."),
        (name = "users", description = "A tenant's users, their API keys and revoked tokens."),
        (name = "quotas", description = "Token, cost and rate limits, and what is used."),
        (name = "usage", description = "Usage reports and billing exports."),
        (name = "auth", description = "Why a token is accepted or refused."),
        (name = "audit", description = "Who changed what."),
        (name = "scim settings", description = "A tenant's SCIM tokens and settings."),
        (name = "webhooks", description = "A tenant's webhook endpoints and their deliveries."),
        (name = "groups", description = "The policy a group gives its members."),
        (name = "config", description = "Reading the configuration again without a restart."),
        (name = "scim", description = "SCIM 2.0 (RFC 7643/7644), one endpoint per tenant."),
    )
)]
struct ApiDoc;

/// The security schemes the operations name.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let bearer = |description: &str, format: Option<&str>| {
            let mut http = HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(description));
            if let Some(format) = format {
                http = http.bearer_format(format);
            }
            SecurityScheme::Http(http.build())
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "platform_token",
            bearer(
                "The platform admin's token, read from the variable `[admin] token_env` names. \
                 May call every admin route.",
                None,
            ),
        );
        components.add_security_scheme(
            "tenant_admin",
            bearer(
                "A JWT or API key of a user whose role is `admin`: their own tenant's routes only.",
                Some("JWT or tg- API key"),
            ),
        );
        components.add_security_scheme(
            "scim_token",
            bearer(
                "A SCIM token of the tenant in the path (`POST /admin/v1/tenants/{tenant}/scim-tokens`).",
                None,
            ),
        );
        components.add_security_scheme(
            "bearer",
            bearer(
                "A JWT from a registered issuer, or a user's API key.",
                Some("JWT or tg- API key"),
            ),
        );
        components.add_security_scheme(
            "x_api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-api-key",
                "The same credential as the bearer, where the anthropic SDK sends it.",
            ))),
        );
    }
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as `docs/openapi.json` holds it: pretty-printed, ending in a newline. The key
/// order is the document's own (maps sorted), the same on every build.
pub fn json() -> String {
    // Serialising a tree of plain data does not fail; an empty answer would show in the test.
    let mut text = serde_json::to_string_pretty(&document()).unwrap_or_default();
    text.push('\n');
    text
}

/// `GET /openapi.json`: the document, without authentication (it describes routes and shapes,
/// no secret and nothing about any tenant).
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "meta",
    responses((status = 200, description = "This document.", content_type = "application/json", body = Object)),
    security(())
)]
pub async fn serve() -> Response {
    static DOCUMENT: LazyLock<String> = LazyLock::new(json);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        DOCUMENT.as_str(),
    )
        .into_response()
}
