//! `/admin/v1/issuers`: the identity providers whose tokens are accepted.
//!
//! Everything about an issuer is checked here, before anything is written: a misconfigured
//! issuer is a security hole or an outage, so it never reaches the store.

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::api::json::ApiJson;
use crate::audit::Actor;
use crate::auth::algorithms::{self, KeyFamily};
use crate::clock::Timestamp;
use crate::error::ApiError;
use crate::ids;
use crate::state::AppState;
use crate::store::{Issuer, KeySource, SubjectCase};

/// Shortest HS256 secret accepted (RFC 7518 §3.2: at least the hash size).
const MIN_HS256_SECRET: usize = 32;
const MAX_LEEWAY_SECONDS: i64 = 300;
/// Most scopes an issuer may require, and the longest one: a scope is a short token.
const MAX_REQUIRED_SCOPES: usize = 32;
const MAX_SCOPE: usize = 256;

/// An issuer to register: exactly one of `tenant` and `tenant_claim`, and exactly one key
/// source (`jwks_url`, `public_key_pem`, `hs256_secret`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIssuerBody {
    /// The tokens' `iss`, exactly.
    issuer: String,
    /// The one tenant the issuer's tokens belong to.
    #[serde(default)]
    tenant: Option<String>,
    /// The claim that names the tenant, for an issuer shared by tenants.
    #[serde(default)]
    tenant_claim: Option<String>,
    /// Accepted `aud` values; at least one.
    audiences: Vec<String>,
    #[serde(default)]
    jwks_url: Option<String>,
    #[serde(default)]
    public_key_pem: Option<String>,
    /// At least 32 bytes; never shown again.
    #[serde(default)]
    #[schema(write_only)]
    hs256_secret: Option<String>,
    /// Default: every algorithm the key source can verify.
    #[serde(default)]
    algorithms: Option<Vec<String>>,
    /// Default `sub`.
    #[serde(default)]
    subject_claim: Option<String>,
    #[serde(default)]
    subject_case: SubjectCase,
    /// Create an unknown subject as an active member on first sight.
    #[serde(default)]
    jit_provisioning: bool,
    /// 0 to 300; default 30.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 300)]
    leeway_seconds: Option<i64>,
    /// The console's OIDC client at this issuer (public, PKCE); must be one of `audiences`.
    #[serde(default)]
    console_client_id: Option<String>,
    /// The claim listing the token holder's groups (e.g. `groups`).
    #[serde(default)]
    groups_claim: Option<String>,
    /// Scopes every token must hold, in `scope` or `scp`.
    #[serde(default)]
    required_scopes: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/admin/v1/issuers",
    operation_id = "issuers_create",
    tag = "issuers",
    request_body = NewIssuerBody,
    responses(
        (status = 201, description = "The issuer, registered.", body = Issuer),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
        (status = 409, response = crate::api::openapi::Conflict),
    ),
    security(("platform_token" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    by: Actor,
    ApiJson(body): ApiJson<NewIssuerBody>,
) -> Result<(StatusCode, Json<Issuer>), ApiError> {
    let issuer = state.admin.create_issuer(&by, &validate(body)?).await?;
    Ok((StatusCode::CREATED, Json(issuer)))
}

#[utoipa::path(
    get,
    path = "/admin/v1/issuers",
    operation_id = "issuers_list",
    tag = "issuers",
    responses(
        (status = 200, description = "Every issuer; never a secret.", body = Vec<Issuer>),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
    ),
    security(("platform_token" = []))
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<Issuer>>, ApiError> {
    Ok(Json(state.store.issuers().await?))
}

#[utoipa::path(
    get,
    path = "/admin/v1/issuers/{id}",
    operation_id = "issuers_get",
    tag = "issuers",
    params(("id" = String, Path, description = "The issuer's id (not its URL).")),
    responses(
        (status = 200, description = "The issuer.", body = Issuer),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Issuer>, ApiError> {
    let issuer = state
        .store
        .issuers()
        .await?
        .into_iter()
        .find(|issuer| issuer.id == id)
        .ok_or_else(|| ApiError::not_found(format!("Issuer `{id}` not found.")))?;
    Ok(Json(issuer))
}

#[utoipa::path(
    delete,
    path = "/admin/v1/issuers/{id}",
    operation_id = "issuers_delete",
    tag = "issuers",
    params(("id" = String, Path, description = "The issuer's id (not its URL).")),
    responses(
        (status = 204, description = "The issuer is gone; its tokens are refused from now on."),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
    security(("platform_token" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    by: Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.admin.delete_issuer(&by, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Turns a request body into an issuer to store, or says which field is wrong.
fn validate(body: NewIssuerBody) -> Result<Issuer, ApiError> {
    ids::text("issuer", &body.issuer, ids::MAX_TEXT)?;
    if body.issuer.trim() != body.issuer {
        return Err(bad("`issuer` must not start or end with whitespace"));
    }
    match (&body.tenant, &body.tenant_claim) {
        (Some(tenant), None) => ids::tenant_id("tenant", tenant)?,
        (None, Some(claim)) => ids::text("tenant_claim", claim, 256)?,
        _ => {
            return Err(bad(
                "exactly one of `tenant` (bind the issuer to one tenant) and `tenant_claim` \
                 (the claim that names the tenant) must be given",
            ));
        }
    }
    if body.audiences.is_empty() {
        return Err(bad("`audiences` must list at least one audience"));
    }
    for (i, audience) in body.audiences.iter().enumerate() {
        ids::text(&format!("audiences[{i}]"), audience, ids::MAX_TEXT)?;
    }
    let key_source = match (body.jwks_url, body.public_key_pem, body.hs256_secret) {
        (Some(url), None, None) => KeySource::JwksUrl(jwks_url(url)?),
        (None, Some(pem), None) => KeySource::PublicKeyPem(pem),
        (None, None, Some(secret)) => {
            if secret.len() < MIN_HS256_SECRET {
                return Err(bad(format!(
                    "`hs256_secret` must be at least {MIN_HS256_SECRET} bytes"
                )));
            }
            KeySource::Hs256Secret(secret)
        }
        _ => {
            return Err(bad(
                "exactly one key source must be given: `jwks_url`, `public_key_pem` or \
                 `hs256_secret`",
            ));
        }
    };
    let families: &[KeyFamily] = match &key_source {
        KeySource::Hs256Secret(_) => &[KeyFamily::Hmac],
        KeySource::PublicKeyPem(pem) => {
            let family = algorithms::pem_family(pem).ok_or_else(|| {
                bad("`public_key_pem` is not a PEM-encoded RSA, EC (P-256/P-384) or Ed25519 public key")
            })?;
            match family {
                KeyFamily::Rsa => &[KeyFamily::Rsa],
                KeyFamily::Ec => &[KeyFamily::Ec],
                KeyFamily::Ed => &[KeyFamily::Ed],
                KeyFamily::Hmac => &[KeyFamily::Hmac],
            }
        }
        KeySource::JwksUrl(_) => &[KeyFamily::Rsa, KeyFamily::Ec, KeyFamily::Ed],
    };
    let algorithms = match body.algorithms {
        Some(list) if list.is_empty() => return Err(bad("`algorithms` must not be empty")),
        Some(list) => list,
        None => algorithms::defaults_for(families),
    };
    for (i, name) in algorithms.iter().enumerate() {
        let family = algorithms::family(name).ok_or_else(|| {
            bad(format!(
                "`algorithms[{i}]`: `{name}` is not supported (one of {})",
                algorithms::SUPPORTED.join(", ")
            ))
        })?;
        if !families.contains(&family) {
            return Err(bad(format!(
                "`algorithms[{i}]`: `{name}` cannot be verified with the issuer's `{}`",
                key_source.kind()
            )));
        }
    }
    let subject_claim = body.subject_claim.unwrap_or_else(|| "sub".to_owned());
    ids::text("subject_claim", &subject_claim, 256)?;
    let leeway_seconds = body.leeway_seconds.unwrap_or(30);
    if !(0..=MAX_LEEWAY_SECONDS).contains(&leeway_seconds) {
        return Err(bad(format!(
            "`leeway_seconds` must be between 0 and {MAX_LEEWAY_SECONDS}"
        )));
    }
    if let Some(client_id) = &body.console_client_id {
        ids::text("console_client_id", client_id, ids::MAX_TEXT)?;
        // The ID token a console login brings back is checked like any bearer: its audience
        // (the client id) must be one the issuer accepts.
        if !body.audiences.contains(client_id) {
            return Err(bad(
                "`console_client_id` must also be listed in `audiences`: the console's ID tokens \
                 carry it as their audience",
            ));
        }
        if body.tenant.is_none() {
            return Err(bad(
                "`console_client_id` needs an issuer bound to one `tenant`",
            ));
        }
    }
    if let Some(claim) = &body.groups_claim {
        ids::text("groups_claim", claim, 256)?;
    }
    required_scopes(&body.required_scopes)?;
    Ok(Issuer {
        id: uuid::Uuid::now_v7().to_string(),
        issuer: body.issuer,
        tenant_id: body.tenant,
        tenant_claim: body.tenant_claim,
        audiences: body.audiences,
        key_source,
        algorithms,
        subject_claim,
        subject_case: body.subject_case,
        jit_provisioning: body.jit_provisioning,
        leeway_seconds,
        created_at: Timestamp::now(),
        console_client_id: body.console_client_id,
        groups_claim: body.groups_claim,
        required_scopes: body.required_scopes,
    })
}

/// Each required scope is one scope token as RFC 6749 §3.3 defines it (printable ASCII
/// without space, `"` or `\`): `scope` lists them separated by spaces, so a scope with a space
/// could never be held.
fn required_scopes(scopes: &[String]) -> Result<(), ApiError> {
    if scopes.len() > MAX_REQUIRED_SCOPES {
        return Err(ApiError::invalid_field(
            "required_scopes",
            format!("`required_scopes` may list at most {MAX_REQUIRED_SCOPES} scopes"),
        ));
    }
    for (i, scope) in scopes.iter().enumerate() {
        let field = format!("required_scopes[{i}]");
        let token = |c: char| c.is_ascii_graphic() && c != '"' && c != '\\';
        if scope.is_empty() || scope.len() > MAX_SCOPE || !scope.chars().all(token) {
            return Err(ApiError::invalid_field(
                &field,
                format!(
                    "`{field}` must be 1 to {MAX_SCOPE} printable ASCII characters without \
                     spaces, quotes or backslashes"
                ),
            ));
        }
    }
    Ok(())
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message)
}

fn jwks_url(url: String) -> Result<String, ApiError> {
    let parsed = reqwest::Url::parse(&url)
        .map_err(|_| ApiError::invalid_request("`jwks_url` is not a valid URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ApiError::invalid_request(
            "`jwks_url` must be an http:// or https:// URL with a host",
        ));
    }
    Ok(url)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscoverBody {
    /// The issuer's URL.
    issuer: String,
}

#[utoipa::path(
    post,
    path = "/admin/v1/issuers/discover",
    operation_id = "issuers_discover",
    tag = "issuers",
    request_body = DiscoverBody,
    responses(
        (status = 200, description = "What the issuer's OpenID discovery document says.", body = Discovered),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
    ),
    security(("platform_token" = []))
)]
/// `POST /admin/v1/issuers/discover` `{"issuer"}`: what the issuer's OpenID discovery document
/// says (`issuer`, `jwks_uri`, the authorization and token endpoints), to register it from its
/// URL. Nothing is stored.
pub async fn discover(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<DiscoverBody>,
) -> Result<Json<Discovered>, ApiError> {
    let issuer = body.issuer.trim();
    if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
        return Err(ApiError::invalid_field(
            "issuer",
            "`issuer` must be an http(s) URL",
        ));
    }
    let found = crate::console::sso::discovery(&state, issuer)
        .await
        .map_err(|reason| {
            ApiError::invalid_field(
                "issuer",
                format!("The issuer's discovery document could not be used ({reason})."),
            )
        })?;
    Ok(Json(Discovered {
        issuer: found.issuer.clone(),
        jwks_uri: found.jwks_uri.clone(),
        authorization_endpoint: found.authorization_endpoint.clone(),
        token_endpoint: found.token_endpoint.clone(),
    }))
}

/// What an issuer's OpenID discovery document says, to register it from.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Discovered {
    issuer: String,
    jwks_uri: Option<String>,
    authorization_endpoint: String,
    token_endpoint: String,
}
