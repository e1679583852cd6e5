//! Why a credential was refused. The caller never sees these; the operator sees them in the
//! log line, in `tollgate_auth_failures_total{reason}` and in `explain`. The one the caller
//! does learn is [`Reason::InsufficientScope`]: OAuth 2.0 bearer clients (RFC 6750 §3.1) are
//! told a valid token lacks scope, so they ask for it — but never which scope.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    MalformedToken,
    UnsupportedAlgorithm,
    UnknownIssuer,
    UnknownKeyId,
    BadSignature,
    Expired,
    NotYetValid,
    AudienceMismatch,
    MissingSubject,
    TenantClaimMissing,
    UnknownTenant,
    TenantDisabled,
    TenantIssuerMismatch,
    UnknownUser,
    UserSuspended,
    UserDeleted,
    TokenRevoked,
    UnknownApiKey,
    ApiKeyRevoked,
    ApiKeyExpired,
    /// A valid token without every scope its issuer requires: 403, not the generic 401.
    InsufficientScope,
}

impl Reason {
    pub const ALL: [Reason; 21] = [
        Self::MalformedToken,
        Self::UnsupportedAlgorithm,
        Self::UnknownIssuer,
        Self::UnknownKeyId,
        Self::BadSignature,
        Self::Expired,
        Self::NotYetValid,
        Self::AudienceMismatch,
        Self::MissingSubject,
        Self::TenantClaimMissing,
        Self::UnknownTenant,
        Self::TenantDisabled,
        Self::TenantIssuerMismatch,
        Self::UnknownUser,
        Self::UserSuspended,
        Self::UserDeleted,
        Self::TokenRevoked,
        Self::UnknownApiKey,
        Self::ApiKeyRevoked,
        Self::ApiKeyExpired,
        Self::InsufficientScope,
    ];

    /// The code of CONTRACT.md, used as a metric label and in logs.
    pub const fn code(self) -> &'static str {
        match self {
            Self::MalformedToken => "malformed_token",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::UnknownIssuer => "unknown_issuer",
            Self::UnknownKeyId => "unknown_key_id",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::AudienceMismatch => "audience_mismatch",
            Self::MissingSubject => "missing_subject",
            Self::TenantClaimMissing => "tenant_claim_missing",
            Self::UnknownTenant => "unknown_tenant",
            Self::TenantDisabled => "tenant_disabled",
            Self::TenantIssuerMismatch => "tenant_issuer_mismatch",
            Self::UnknownUser => "unknown_user",
            Self::UserSuspended => "user_suspended",
            Self::UserDeleted => "user_deleted",
            Self::TokenRevoked => "token_revoked",
            Self::UnknownApiKey => "unknown_api_key",
            Self::ApiKeyRevoked => "api_key_revoked",
            Self::ApiKeyExpired => "api_key_expired",
            Self::InsufficientScope => "insufficient_scope",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}
