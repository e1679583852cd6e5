//! Issuers: the identity providers whose tokens tollgate accepts, each bound to one tenant or
//! naming the claim that carries the tenant.

use serde::{Deserialize, Serialize};

use super::tx::on_tx;
use super::{Store, StoreError, Tx, from_json_text, json_text, on_pool};
use crate::clock::Timestamp;

/// How the subject claim is normalised before the user lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SubjectCase {
    #[default]
    Exact,
    Lowercase,
}

impl SubjectCase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Lowercase => "lowercase",
        }
    }
}

/// Where the issuer's verification keys come from. Exactly one per issuer.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    JwksUrl(String),
    PublicKeyPem(String),
    Hs256Secret(String),
}

impl KeySource {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::JwksUrl(_) => "jwks_url",
            Self::PublicKeyPem(_) => "public_key_pem",
            Self::Hs256Secret(_) => "hs256_secret",
        }
    }
}

// The secret must never reach a log line through `{:?}`.
impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::JwksUrl(url) => f.debug_tuple("JwksUrl").field(url).finish(),
            Self::PublicKeyPem(_) => f.write_str("PublicKeyPem(..)"),
            Self::Hs256Secret(_) => f.write_str("Hs256Secret(***)"),
        }
    }
}

/// A registered issuer, as the auth stage uses it. It serialises (for the admin API and the
/// audit log) as its view: where its keys come from, never an HS256 secret.
#[derive(Debug, Clone, Serialize)]
#[serde(into = "IssuerView")]
pub struct Issuer {
    pub id: String,
    pub issuer: String,
    pub tenant_id: Option<String>,
    pub tenant_claim: Option<String>,
    pub audiences: Vec<String>,
    pub key_source: KeySource,
    pub algorithms: Vec<String>,
    pub subject_claim: String,
    pub subject_case: SubjectCase,
    pub jit_provisioning: bool,
    pub leeway_seconds: i64,
    pub created_at: Timestamp,
    /// The OIDC client (public, with PKCE) the console signs this issuer's tenant admins in
    /// with; `None`: no console login through this issuer.
    pub console_client_id: Option<String>,
    /// The claim that lists the groups a token's holder is in (an array of names, or one
    /// name); `None`: the issuer's tokens carry no groups tollgate reads.
    pub groups_claim: Option<String>,
    /// Scopes every token of the issuer must hold (in `scope` or `scp`); empty: none.
    pub required_scopes: Vec<String>,
}

/// An issuer as it is shown: where its keys come from, never the secret.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Issuer)]
struct IssuerView {
    id: String,
    issuer: String,
    tenant: Option<String>,
    tenant_claim: Option<String>,
    audiences: Vec<String>,
    /// `jwks_url`, `public_key_pem` or `hs256_secret`.
    key_source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks_url: Option<String>,
    algorithms: Vec<String>,
    subject_claim: String,
    subject_case: SubjectCase,
    jit_provisioning: bool,
    leeway_seconds: i64,
    created_at: Timestamp,
    console_client_id: Option<String>,
    groups_claim: Option<String>,
    required_scopes: Vec<String>,
}

/// In the OpenAPI document an issuer is what it serialises as: its view.
impl utoipa::PartialSchema for Issuer {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <IssuerView as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for Issuer {
    fn name() -> std::borrow::Cow<'static, str> {
        <IssuerView as utoipa::ToSchema>::name()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <IssuerView as utoipa::ToSchema>::schemas(schemas);
    }
}

impl From<Issuer> for IssuerView {
    fn from(issuer: Issuer) -> Self {
        let jwks_url = match &issuer.key_source {
            KeySource::JwksUrl(url) => Some(url.clone()),
            _ => None,
        };
        Self {
            id: issuer.id,
            issuer: issuer.issuer,
            tenant: issuer.tenant_id,
            tenant_claim: issuer.tenant_claim,
            audiences: issuer.audiences,
            key_source: issuer.key_source.kind(),
            jwks_url,
            algorithms: issuer.algorithms,
            subject_claim: issuer.subject_claim,
            subject_case: issuer.subject_case,
            jit_provisioning: issuer.jit_provisioning,
            leeway_seconds: issuer.leeway_seconds,
            created_at: issuer.created_at,
            console_client_id: issuer.console_client_id,
            groups_claim: issuer.groups_claim,
            required_scopes: issuer.required_scopes,
        }
    }
}

/// A validated issuer to register (see the admin API for the validation).
pub type NewIssuer = Issuer;

#[derive(sqlx::FromRow)]
struct IssuerRow {
    id: String,
    issuer: String,
    tenant_id: Option<String>,
    tenant_claim: Option<String>,
    audiences: String,
    jwks_url: Option<String>,
    public_key_pem: Option<String>,
    hs256_secret: Option<String>,
    algorithms: String,
    subject_claim: String,
    subject_case: String,
    jit_provisioning: bool,
    leeway_seconds: i64,
    created_at: Timestamp,
    console_client_id: Option<String>,
    groups_claim: Option<String>,
    required_scopes: String,
}

impl From<IssuerRow> for Issuer {
    fn from(row: IssuerRow) -> Self {
        let key_source = match (row.jwks_url, row.public_key_pem, row.hs256_secret) {
            (Some(url), _, _) => KeySource::JwksUrl(url),
            (_, Some(pem), _) => KeySource::PublicKeyPem(pem),
            // The schema guarantees exactly one; an empty secret verifies nothing.
            (_, _, secret) => KeySource::Hs256Secret(secret.unwrap_or_default()),
        };
        Self {
            id: row.id,
            issuer: row.issuer,
            tenant_id: row.tenant_id,
            tenant_claim: row.tenant_claim,
            audiences: from_json_text(&row.audiences),
            key_source,
            algorithms: from_json_text(&row.algorithms),
            subject_claim: row.subject_claim,
            subject_case: if row.subject_case == "lowercase" {
                SubjectCase::Lowercase
            } else {
                SubjectCase::Exact
            },
            jit_provisioning: row.jit_provisioning,
            leeway_seconds: row.leeway_seconds,
            created_at: row.created_at,
            console_client_id: row.console_client_id,
            groups_claim: row.groups_claim,
            required_scopes: from_json_text(&row.required_scopes),
        }
    }
}

macro_rules! columns {
    () => {
        "id, issuer, tenant_id, tenant_claim, audiences, jwks_url, public_key_pem, hs256_secret, \
         algorithms, subject_claim, subject_case, jit_provisioning, leeway_seconds, created_at, \
         console_client_id, groups_claim, required_scopes"
    };
}

impl Store {
    pub async fn issuers(&self) -> Result<Vec<Issuer>, StoreError> {
        let rows: Vec<IssuerRow> = on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT ", columns!(), " FROM issuers ORDER BY created_at, id"
        ))
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(Issuer::from).collect())
    }

    /// The issuer whose `iss` is exactly `issuer`.
    pub async fn issuer_by_iss(&self, issuer: &str) -> Result<Option<Issuer>, StoreError> {
        let row: Option<IssuerRow> = on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT ", columns!(), " FROM issuers WHERE issuer = $1"
        ))
        .bind(issuer)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(Issuer::from))
    }

    /// Whether some issuer is bound to this tenant (then a tenant claim may not reach it).
    pub async fn tenant_has_own_issuer(&self, tenant_id: &str) -> Result<bool, StoreError> {
        let count: i64 = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM issuers WHERE tenant_id = $1"
        )
        .bind(tenant_id)
        .fetch_one(pool)
        .await)?;
        Ok(count > 0)
    }
}

// === impl Tx ===

impl Tx {
    pub async fn create_issuer(&mut self, new: &NewIssuer) -> Result<Issuer, StoreError> {
        let (jwks_url, pem, secret) = match &new.key_source {
            KeySource::JwksUrl(url) => (Some(url.as_str()), None, None),
            KeySource::PublicKeyPem(pem) => (None, Some(pem.as_str()), None),
            KeySource::Hs256Secret(secret) => (None, None, Some(secret.as_str())),
        };
        let row: IssuerRow = on_tx!(self, conn => sqlx::query_as(concat!(
            "INSERT INTO issuers (", columns!(), ") \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
             RETURNING ", columns!()
        ))
        .bind(&new.id)
        .bind(&new.issuer)
        .bind(new.tenant_id.as_deref())
        .bind(new.tenant_claim.as_deref())
        .bind(json_text(&new.audiences))
        .bind(jwks_url)
        .bind(pem)
        .bind(secret)
        .bind(json_text(&new.algorithms))
        .bind(&new.subject_claim)
        .bind(new.subject_case.as_str())
        .bind(new.jit_provisioning)
        .bind(new.leeway_seconds)
        .bind(new.created_at)
        .bind(new.console_client_id.as_deref())
        .bind(new.groups_claim.as_deref())
        .bind(json_text(&new.required_scopes))
        .fetch_one(conn)
        .await)
        .map_err(StoreError::conflict_on_unique("issuer"))?;
        Ok(row.into())
    }

    /// Removes the issuer; returns what it was.
    pub async fn delete_issuer(&mut self, id: &str) -> Result<Issuer, StoreError> {
        let row: Option<IssuerRow> = on_tx!(self, conn => sqlx::query_as(concat!(
            "DELETE FROM issuers WHERE id = $1 RETURNING ", columns!()
        ))
        .bind(id)
        .fetch_optional(conn)
        .await)?;
        row.map(Issuer::from).ok_or(StoreError::NotFound("issuer"))
    }
}
