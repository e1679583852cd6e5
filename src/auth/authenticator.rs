//! The auth stage: a bearer credential becomes a [`Principal`] — an active user of an active
//! tenant — or a [`Rejection`] with the precise reason.
//!
//! JWT: parse strictly → issuer by exact `iss` → allowed algorithm → key (JWKS, PEM or secret)
//! → signature → `exp`/`nbf`/`iat` → `aud` → tenant (bound, or from the tenant claim) →
//! subject → the issuer's required scopes → user in that tenant only → status → revocation →
//! groups. API key: hash → key row → revoked/expired → the same tenant, user, status,
//! revocation and group steps.
//!
//! A verified token is cached until its `exp`, so a warm request costs a few cache lookups and
//! no SQL; user status and revocation are still checked on every request, from caches that
//! admin writes invalidate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;
use serde_json::Value;

use super::api_keys;
use super::directory::{Directory, IssuerEntry, IssuerKeys};
use super::groups;
use super::jwks::Refresh;
use super::keys::{KeySet, verify};
use super::lifetime::lifetime;
use super::principal::{Credential, Principal};
use super::reason::Reason;
use super::scopes;
use super::token::{self, Refusal, UnverifiedToken};
use super::trace::{Silent, Step, Trace};
use crate::clock::Timestamp;
use crate::ids;
use crate::store::{StoreError, SubjectCase, TenantStatus, UserRole, UserStatus};

/// Why authentication did not produce a principal.
#[derive(Debug)]
pub enum AuthError {
    /// The credential is refused; the caller gets the one generic 401.
    Rejected(Box<Rejection>),
    /// The store could not be asked; the caller gets 503 (it is not their fault).
    Unavailable(Arc<StoreError>),
}

/// A refusal, with everything the operator's log line needs. Never holds the credential.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub reason: Reason,
    pub detail: String,
    pub issuer: Option<String>,
    pub kid: Option<String>,
    pub tenant: Option<String>,
    pub subject: Option<String>,
}

impl Rejection {
    fn new(reason: Reason, detail: String) -> Self {
        Self {
            reason,
            detail,
            issuer: None,
            kid: None,
            tenant: None,
            subject: None,
        }
    }
}

impl From<Refusal> for Rejection {
    fn from(refusal: Refusal) -> Self {
        Self::new(refusal.reason, refusal.detail)
    }
}

/// A token whose signature, lifetime and audience have been checked: what the cache keeps.
pub struct VerifiedToken {
    pub issuer: Arc<IssuerEntry>,
    pub kid: Option<String>,
    pub tenant: Arc<str>,
    /// The tenant came from the token's tenant claim, not from the issuer's binding.
    pub via_claim: bool,
    pub subject: Arc<str>,
    pub jti: Option<Arc<str>>,
    /// `iat` in seconds, if the token has one.
    pub issued_at: Option<i64>,
    /// The names in the issuer's groups claim (empty when it names none).
    pub groups: Vec<String>,
    /// Until when (Unix seconds, leeway included) the token may be served from the cache.
    pub usable_until: i64,
}

/// Who a credential says the caller is, before the directory has been asked.
struct Claimant<'a> {
    tenant: &'a Arc<str>,
    subject: &'a Arc<str>,
    /// The tenant came from a tenant claim (then it must not have an issuer of its own).
    via_claim: bool,
    /// Create the user if unknown.
    jit: bool,
    /// The request, for the audit event of a user created just in time.
    request_id: Option<&'a str>,
    jti: Option<&'a Arc<str>>,
    /// When the credential was issued, for the user's `tokens_valid_after`.
    issued_at: Option<Timestamp>,
    /// The group names the credential claims (a token's groups claim).
    groups: &'a [String],
    credential: Credential,
}

/// Keeps each verified token until it expires.
struct UntilExpiry;

impl Expiry<String, Arc<VerifiedToken>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _: &String,
        token: &Arc<VerifiedToken>,
        _: Instant,
    ) -> Option<Duration> {
        let left = token.usable_until.saturating_sub(unix_now());
        Some(Duration::from_secs(u64::try_from(left).unwrap_or(0)))
    }
}

pub struct Authenticator {
    directory: Arc<Directory>,
    /// Keyed by the whole token. foldhash, not SipHash: every request hashes ~1 KB of token,
    /// and only verified tokens are ever inserted, so callers cannot flood a bucket.
    tokens: Cache<String, Arc<VerifiedToken>, foldhash::fast::RandomState>,
    token_stats: crate::telemetry::CacheStats,
    /// The refusals made lately, for the operator.
    refusals: super::refusals::Refusals,
}

impl Authenticator {
    pub fn new(directory: Arc<Directory>, token_cache_capacity: u64) -> Self {
        Self {
            directory,
            tokens: Cache::builder()
                .max_capacity(token_cache_capacity)
                .expire_after(UntilExpiry)
                .build_with_hasher(foldhash::fast::RandomState::default()),
            token_stats: crate::telemetry::CacheStats::new("auth_token"),
            refusals: super::refusals::Refusals::default(),
        }
    }

    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    /// The refusals made lately (the caller records them, once it has logged them).
    pub fn refusals(&self) -> &super::refusals::Refusals {
        &self.refusals
    }

    /// Forgets every verified token (after an issuer changed, say).
    pub fn forget_tokens(&self) {
        self.tokens.invalidate_all();
    }

    /// The hot path: who presents this bearer credential? `request_id` names the request in
    /// the audit event of a user provisioned just in time.
    pub async fn authenticate(
        &self,
        credential: &str,
        request_id: Option<&str>,
    ) -> Result<Principal, AuthError> {
        self.resolve(credential, &mut Silent, true, request_id)
            .await
    }

    /// The same without the verified-token cache: every signature is checked again. This is the
    /// cost of a token's first request (benchmarked as "cold").
    pub async fn authenticate_uncached(&self, credential: &str) -> Result<Principal, AuthError> {
        self.resolve(credential, &mut Silent, false, None).await
    }

    /// The full walk with every step recorded (for `explain`); bypasses the token cache so
    /// every check runs again.
    pub async fn run<T: Trace>(
        &self,
        credential: &str,
        trace: &mut T,
    ) -> Result<Principal, AuthError> {
        self.resolve(credential, trace, false, None).await
    }

    async fn resolve<T: Trace>(
        &self,
        credential: &str,
        trace: &mut T,
        use_cache: bool,
        request_id: Option<&str>,
    ) -> Result<Principal, AuthError> {
        if credential.starts_with(api_keys::PREFIX) {
            return self.api_key(credential, trace).await;
        }
        let cached = if use_cache {
            let cached = self.tokens.get(credential).await;
            self.token_stats.record(cached.is_some());
            cached
        } else {
            None
        };
        let verified = match cached {
            Some(verified) => verified,
            None => {
                // Boxed, as every path the warm cache skips: the signature check's state (a
                // JWKS fetch among it) would otherwise be moved with every request's future.
                let verified = Arc::new(
                    Box::pin(self.verify(credential, trace))
                        .await
                        .map_err(|r| AuthError::Rejected(Box::new(r)))?,
                );
                self.tokens
                    .insert(credential.to_owned(), verified.clone())
                    .await;
                verified
            }
        };
        let claimant = Claimant {
            tenant: &verified.tenant,
            subject: &verified.subject,
            via_claim: verified.via_claim,
            jit: verified.issuer.issuer.jit_provisioning,
            request_id,
            jti: verified.jti.as_ref(),
            issued_at: verified.issued_at.map(Timestamp::from_unix_seconds),
            groups: &verified.groups,
            credential: Credential::Jwt {
                issuer_id: Arc::from(verified.issuer.issuer.id.as_str()),
            },
        };
        self.admit(claimant, trace)
            .await
            .map_err(|error| with_token_context(error, &verified))
    }

    /// Signature, lifetime, audience, tenant claim, subject and scopes: everything that
    /// depends only on the token and the issuer's configuration.
    async fn verify<T: Trace>(
        &self,
        token: &str,
        trace: &mut T,
    ) -> Result<VerifiedToken, Rejection> {
        let parsed = token::parse(token).map_err(|refusal| {
            trace.record(Step::Format, false, || refusal.detail.clone());
            Rejection::from(refusal)
        })?;
        trace.record(Step::Format, true, || {
            format!(
                "a compact JWS, alg `{}`, kid {}",
                parsed.alg,
                parsed
                    .kid
                    .as_deref()
                    .map_or("none".to_owned(), |k| format!("`{k}`"))
            )
        });
        let mut context = Rejection::new(Reason::MalformedToken, String::new());
        context.kid = parsed.kid.clone();
        let reject = |context: &Rejection, reason: Reason, detail: String| Rejection {
            reason,
            detail,
            ..context.clone()
        };

        // The issuer, by the exact `iss`.
        let Some(Value::String(iss)) = parsed.claims.get("iss") else {
            trace.record(Step::Issuer, false, || {
                "`iss` is missing or not a string".into()
            });
            return Err(reject(
                &context,
                Reason::UnknownIssuer,
                "`iss` is missing or not a string".into(),
            ));
        };
        context.issuer = Some(iss.clone());
        let table = self.directory.issuers();
        let Some(entry) = table.by_iss.get(iss).cloned() else {
            let detail = format!("no issuer is registered as `{iss}` (compared exactly)");
            trace.record(Step::Issuer, false, || detail.clone());
            return Err(reject(&context, Reason::UnknownIssuer, detail));
        };
        let issuer = &entry.issuer;
        trace.record(Step::Issuer, true, || {
            format!("`{iss}` is registered (issuer id {})", issuer.id)
        });

        // The algorithm: only ever compared with the issuer's allow-list.
        if !issuer.algorithms.contains(&parsed.alg) {
            let detail = format!(
                "alg `{}` is not among the issuer's allowed algorithms {:?}",
                parsed.alg, issuer.algorithms
            );
            trace.record(Step::Algorithm, false, || detail.clone());
            return Err(reject(&context, Reason::UnsupportedAlgorithm, detail));
        }
        trace.record(Step::Algorithm, true, || {
            format!("`{}` is allowed for this issuer", parsed.alg)
        });

        // The key and the signature.
        let keys = self.keys(&entry, &parsed).await.map_err(|detail| {
            trace.record(Step::Key, false, || detail.clone());
            reject(&context, Reason::UnknownKeyId, detail)
        })?;
        let candidates = keys
            .candidates(parsed.kid.as_deref(), &parsed.alg)
            .unwrap_or_default();
        if candidates.is_empty() {
            let detail = format!(
                "no key of the issuer fits kid {:?} and alg `{}`; the issuer's keys are {:?}",
                parsed.kid,
                parsed.alg,
                keys.kids()
            );
            trace.record(Step::Key, false, || detail.clone());
            return Err(reject(&context, Reason::UnknownKeyId, detail));
        }
        trace.record(Step::Key, true, || {
            format!("{} candidate key(s)", candidates.len())
        });
        let signed = candidates
            .iter()
            .any(|key| verify(parsed.signing_input, parsed.signature, key, &parsed.alg));
        if !signed {
            let detail = "the signature does not verify with the issuer's key".to_owned();
            trace.record(Step::Signature, false, || detail.clone());
            return Err(reject(&context, Reason::BadSignature, detail));
        }
        trace.record(Step::Signature, true, || "valid".into());

        // Lifetime.
        let claims = &parsed.claims;
        let now = unix_now();
        let leeway = issuer.leeway_seconds;
        let lifetime = lifetime(claims, now, leeway);
        let (expires, issued_at) = match lifetime {
            Ok(times) => times,
            Err((reason, detail)) => {
                trace.record(Step::Lifetime, false, || detail.clone());
                return Err(reject(&context, reason, detail));
            }
        };
        trace.record(Step::Lifetime, true, || {
            format!("expires in {} s (leeway {leeway} s)", expires - now)
        });

        // Audience.
        let audiences = match claims.get("aud") {
            Some(Value::String(aud)) => vec![aud.as_str()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !audiences
            .iter()
            .any(|aud| issuer.audiences.iter().any(|own| own == aud))
        {
            let detail = format!(
                "expected one of {:?}, the token has {}",
                issuer.audiences,
                claims
                    .get("aud")
                    .map_or("no `aud`".to_owned(), |aud| aud.to_string())
            );
            trace.record(Step::Audience, false, || detail.clone());
            return Err(reject(&context, Reason::AudienceMismatch, detail));
        }
        trace.record(Step::Audience, true, || format!("{audiences:?} matches"));

        // Tenant: bound to the issuer, or named by the tenant claim.
        let (tenant, via_claim) = match (&issuer.tenant_id, &issuer.tenant_claim) {
            (Some(bound), _) => (bound.clone(), false),
            (None, Some(claim)) => match claims.get(claim) {
                Some(Value::String(tenant)) if !tenant.is_empty() => (tenant.clone(), true),
                _ => {
                    let detail = format!("the tenant claim `{claim}` is missing or not a string");
                    trace.record(Step::Tenant, false, || detail.clone());
                    return Err(reject(&context, Reason::TenantClaimMissing, detail));
                }
            },
            (None, None) => {
                return Err(reject(
                    &context,
                    Reason::TenantClaimMissing,
                    "the issuer names no tenant".into(),
                ));
            }
        };
        context.tenant = Some(tenant.clone());

        // Subject.
        let subject = match claims.get(&issuer.subject_claim) {
            Some(Value::String(raw)) if ids::subject("subject", raw).is_ok() => {
                match issuer.subject_case {
                    SubjectCase::Exact => raw.clone(),
                    // ASCII only: Unicode folding maps lookalikes (KELVIN SIGN → `k`) onto
                    // real users' names. Non-ASCII letters are compared exactly.
                    SubjectCase::Lowercase => raw.to_ascii_lowercase(),
                }
            }
            other => {
                let detail = match other {
                    None => format!("the subject claim `{}` is missing", issuer.subject_claim),
                    Some(_) => format!(
                        "the subject claim `{}` is not a usable string (1–{} bytes, no control characters)",
                        issuer.subject_claim,
                        ids::MAX_SUBJECT
                    ),
                };
                trace.record(Step::Subject, false, || detail.clone());
                return Err(reject(&context, Reason::MissingSubject, detail));
            }
        };
        trace.record(Step::Subject, true, || {
            format!(
                "`{subject}` from claim `{}` ({})",
                issuer.subject_claim,
                issuer.subject_case.as_str()
            )
        });
        context.subject = Some(subject.clone());

        // Scopes: checked once the token is known to be the issuer's, for this tenant and
        // subject, so the refusal names them. The detail (for the operator) names what is
        // missing; the caller is only told that something is.
        if !issuer.required_scopes.is_empty() {
            let missing = scopes::missing(claims, &issuer.required_scopes);
            if !missing.is_empty() {
                let detail = format!(
                    "the token lacks the issuer's required scope(s) {missing:?}; `scope` is {}, `scp` is {}",
                    shown(claims.get("scope")),
                    shown(claims.get("scp")),
                );
                trace.record(Step::Scope, false, || detail.clone());
                return Err(reject(&context, Reason::InsufficientScope, detail));
            }
            trace.record(Step::Scope, true, || {
                format!("holds every required scope {:?}", issuer.required_scopes)
            });
        }
        let groups = issuer
            .groups_claim
            .as_ref()
            .map(|claim| groups::claimed(claims.get(claim)))
            .unwrap_or_default();
        let jti = match claims.get("jti") {
            Some(Value::String(jti)) => Some(Arc::from(jti.as_str())),
            _ => None,
        };
        Ok(VerifiedToken {
            kid: parsed.kid.clone(),
            tenant: Arc::from(tenant),
            via_claim,
            subject: Arc::from(subject),
            jti,
            issued_at,
            groups,
            usable_until: expires.saturating_add(leeway),
            issuer: entry,
        })
    }

    /// The keys to verify with. For a JWKS issuer, an unknown `kid` (or no keys yet) triggers
    /// a refetch, at most once per cooldown.
    async fn keys(
        &self,
        entry: &IssuerEntry,
        parsed: &UnverifiedToken<'_>,
    ) -> Result<Arc<KeySet>, String> {
        match &entry.keys {
            IssuerKeys::Static(Some(keys)) => Ok(keys.clone()),
            IssuerKeys::Static(None) => Err("the issuer's configured key does not parse".into()),
            IssuerKeys::Jwks(source) => {
                let current = source.current();
                let known = current.as_ref().is_some_and(|keys| {
                    keys.candidates(parsed.kid.as_deref(), &parsed.alg)
                        .is_some()
                });
                if known {
                    return current.ok_or_else(|| "no keys".to_owned());
                }
                let outcome = source.refresh_if_allowed().await;
                match (source.current(), outcome) {
                    (Some(keys), _) => {
                        if keys
                            .candidates(parsed.kid.as_deref(), &parsed.alg)
                            .is_none()
                        {
                            return Err(format!(
                                "kid {:?} is not in the JWKS at {}; it has {:?}",
                                parsed.kid,
                                source.url(),
                                keys.kids()
                            ));
                        }
                        Ok(keys)
                    }
                    (None, Refresh::Failed(error)) => Err(format!(
                        "the JWKS at {} could not be fetched ({error}); no keys are cached",
                        source.url()
                    )),
                    (None, _) => Err(format!(
                        "no keys from the JWKS at {} yet (the last fetch failed; retried after the cooldown)",
                        source.url()
                    )),
                }
            }
        }
    }

    /// API keys: `tg-…`, looked up by SHA-256.
    async fn api_key<T: Trace>(
        &self,
        credential: &str,
        trace: &mut T,
    ) -> Result<Principal, AuthError> {
        let hash = api_keys::hash(credential);
        let key = self
            .directory
            .api_key(&hash)
            .await
            .map_err(AuthError::Unavailable)?;
        let refuse = |trace: &mut T, reason: Reason, detail: String, key_id: Option<&str>| {
            trace.record(Step::ApiKey, false, || detail.clone());
            let mut rejection = Rejection::new(reason, detail);
            rejection.kid = key_id.map(|id| format!("api-key:{id}"));
            AuthError::Rejected(Box::new(rejection))
        };
        let Some(key) = key else {
            return Err(refuse(
                trace,
                Reason::UnknownApiKey,
                "no API key has this hash".to_owned(),
                None,
            ));
        };
        if let Some(at) = key.revoked_at {
            return Err(refuse(
                trace,
                Reason::ApiKeyRevoked,
                format!("API key {} was revoked at {}", key.id, at.to_rfc3339()),
                Some(&key.id),
            ));
        }
        if let Some(at) = key.expires_at
            && at <= Timestamp::now()
        {
            return Err(refuse(
                trace,
                Reason::ApiKeyExpired,
                format!("API key {} expired at {}", key.id, at.to_rfc3339()),
                Some(&key.id),
            ));
        }
        trace.record(Step::ApiKey, true, || {
            format!("API key {} ({}) of `{}`", key.id, key.name, key.subject)
        });
        let tenant: Arc<str> = Arc::from(key.tenant_id.as_str());
        let subject: Arc<str> = Arc::from(key.subject.as_str());
        let claimant = Claimant {
            tenant: &tenant,
            subject: &subject,
            via_claim: false,
            jit: false,
            request_id: None,
            jti: None,
            issued_at: Some(key.created_at),
            groups: &[],
            credential: Credential::ApiKey {
                id: Arc::from(key.id.as_str()),
            },
        };
        self.admit(claimant, trace)
            .await
            .map_err(|error| match error {
                AuthError::Rejected(mut rejection) => {
                    rejection.kid = Some(format!("api-key:{}", key.id));
                    AuthError::Rejected(rejection)
                }
                other => other,
            })
    }

    /// Tenant → user → status → revocation: the checks every credential passes, on every
    /// request, from the directory's caches.
    async fn admit<T: Trace>(
        &self,
        claimant: Claimant<'_>,
        trace: &mut T,
    ) -> Result<Principal, AuthError> {
        let Claimant {
            tenant: tenant_id,
            subject,
            via_claim,
            jit,
            request_id,
            jti,
            issued_at,
            groups: claimed,
            credential,
        } = claimant;
        let rejected = |trace: &mut T, step: Step, reason: Reason, detail: String| {
            trace.record(step, false, || detail.clone());
            let mut rejection = Rejection::new(reason, detail);
            rejection.tenant = Some(tenant_id.to_string());
            rejection.subject = Some(subject.to_string());
            AuthError::Rejected(Box::new(rejection))
        };
        let directory = &self.directory;
        let tenant = directory
            .tenant(tenant_id)
            .await
            .map_err(AuthError::Unavailable)?;
        let Some(tenant) = tenant else {
            return Err(rejected(
                trace,
                Step::Tenant,
                Reason::UnknownTenant,
                format!("no tenant `{tenant_id}` exists"),
            ));
        };
        if tenant.status != TenantStatus::Active {
            return Err(rejected(
                trace,
                Step::Tenant,
                Reason::TenantDisabled,
                format!("tenant `{tenant_id}` is {}", tenant.status.as_str()),
            ));
        }
        if via_claim && directory.issuers().bound_tenants.contains(&**tenant_id) {
            return Err(rejected(
                trace,
                Step::Tenant,
                Reason::TenantIssuerMismatch,
                format!(
                    "tenant `{tenant_id}` has an issuer of its own; a tenant claim from another issuer cannot reach it"
                ),
            ));
        }
        trace.record(Step::Tenant, true, || {
            format!(
                "tenant `{tenant_id}` ({}) is active",
                if via_claim {
                    "from the tenant claim"
                } else {
                    "bound to the issuer"
                }
            )
        });

        let key = (tenant_id.clone(), subject.clone());
        let user = match directory.user(&key).await.map_err(AuthError::Unavailable)? {
            Some(user) => user,
            None if jit => {
                let user = Box::pin(directory.provision_user(&key, request_id))
                    .await
                    .map_err(|e| AuthError::Unavailable(Arc::new(e)))?;
                tracing::info!(tenant = %tenant_id, subject = %subject, status = user.status.as_str(),
                    "user provisioned just in time");
                user
            }
            None => {
                return Err(rejected(
                    trace,
                    Step::User,
                    Reason::UnknownUser,
                    format!("no user `{subject}` in tenant `{tenant_id}`"),
                ));
            }
        };
        trace.record(Step::User, true, || {
            format!(
                "user `{subject}` exists in tenant `{tenant_id}` (role {})",
                user.role.as_str()
            )
        });
        match user.status {
            UserStatus::Active => {}
            UserStatus::Suspended => {
                return Err(rejected(
                    trace,
                    Step::Status,
                    Reason::UserSuspended,
                    format!(
                        "the user is suspended (since {})",
                        user.status_changed_at.to_rfc3339()
                    ),
                ));
            }
            UserStatus::Deleted => {
                return Err(rejected(
                    trace,
                    Step::Status,
                    Reason::UserDeleted,
                    format!(
                        "the user was deleted at {}",
                        user.status_changed_at.to_rfc3339()
                    ),
                ));
            }
        }
        trace.record(Step::Status, true, || "active".into());

        if let Some(jti) = jti {
            let revoked = directory
                .is_revoked(&(tenant_id.clone(), jti.clone()))
                .await
                .map_err(AuthError::Unavailable)?;
            if revoked {
                return Err(rejected(
                    trace,
                    Step::Revocation,
                    Reason::TokenRevoked,
                    format!("jti `{jti}` is on tenant `{tenant_id}`'s revocation list"),
                ));
            }
        }
        if let Some(valid_after) = user.tokens_valid_after {
            let issued_ok = issued_at.is_some_and(|at| at >= valid_after);
            if !issued_ok {
                let issued = issued_at.map_or("at an unknown time (no `iat`)".to_owned(), |at| {
                    format!("at {}", at.to_rfc3339())
                });
                return Err(rejected(
                    trace,
                    Step::Revocation,
                    Reason::TokenRevoked,
                    format!(
                        "issued {issued}, before the user's credentials were revoked at {}",
                        valid_after.to_rfc3339()
                    ),
                ));
            }
        }
        trace.record(Step::Revocation, true, || "not revoked".into());

        let groups = directory
            .groups(tenant_id)
            .await
            .map_err(AuthError::Unavailable)?;
        let access = groups.access(subject, claimed);
        trace.record(Step::Groups, true, || {
            let names = groups.names(subject, claimed);
            if names.is_empty() {
                return format!(
                    "in no group that narrows models or gives a role (claimed: {claimed:?})"
                );
            }
            format!(
                "in {names:?}: models {}, role {}",
                access
                    .models
                    .as_deref()
                    .map_or("not narrowed".to_owned(), |models| format!(
                        "narrowed to {models:?}"
                    )),
                if access.admin {
                    "admin (from a group)"
                } else {
                    user.role.as_str()
                }
            )
        });
        Ok(Principal {
            tenant,
            subject: subject.clone(),
            role: if access.admin {
                UserRole::Admin
            } else {
                user.role
            },
            group_models: access.models,
            credential,
        })
    }
}

/// Adds the issuer and kid of a token to a rejection from the admission checks.
fn with_token_context(error: AuthError, verified: &VerifiedToken) -> AuthError {
    match error {
        AuthError::Rejected(mut rejection) => {
            rejection.issuer = Some(verified.issuer.issuer.issuer.clone());
            rejection.kid = verified.kid.clone();
            AuthError::Rejected(rejection)
        }
        other => other,
    }
}

/// A claim as the operator's detail shows it, cut short (it came from the token).
fn shown(claim: Option<&Value>) -> String {
    claim.map_or("absent".to_owned(), |value| {
        value.to_string().chars().take(200).collect()
    })
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    Timestamp::now().millis().div_euclid(1000)
}
