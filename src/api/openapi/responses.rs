//! The error responses operations share, each a reusable component: OpenAI's envelope on the
//! admin API and the OpenAI-style data plane, SCIM's error under `/scim`, Anthropic's on
//! `/v1/messages*`. Declaring them is what lets schemathesis check that every 4xx is in its
//! envelope.

use utoipa::ToResponse;

use crate::error::Envelope;

/// 400: a body, query or path that does not parse or is invalid; `param` names the field when
/// there is one.
#[derive(ToResponse)]
#[response(
    description = "The request is invalid; `error.param` names the field at fault when there is one."
)]
pub struct BadRequest(pub Envelope<'static>);

/// 401: the one answer for every authentication failure.
#[derive(ToResponse)]
#[response(description = "Missing or invalid credentials (the same answer for every cause).")]
pub struct Unauthorized(pub Envelope<'static>);

/// 403.
#[derive(ToResponse)]
#[response(description = "Authenticated, but not allowed here.")]
pub struct Forbidden(pub Envelope<'static>);

/// 404.
#[derive(ToResponse)]
#[response(description = "No such resource.")]
pub struct NotFound(pub Envelope<'static>);

/// 409.
#[derive(ToResponse)]
#[response(description = "The resource already exists.")]
pub struct Conflict(pub Envelope<'static>);

/// 429.
#[derive(ToResponse)]
#[response(
    description = "A rate limit (`rate_limited`) or a quota (`quota_exceeded`) refused the request; see `Retry-After`."
)]
pub struct TooManyRequests(pub Envelope<'static>);

/// 502, 504.
#[derive(ToResponse)]
#[response(
    description = "Every upstream target and fallback failed (502), or the upstream timed out (504)."
)]
pub struct UpstreamFailed(pub Envelope<'static>);

/// 503.
#[derive(ToResponse)]
#[response(
    description = "Cannot serve now (no upstream free, or the database unreachable); see `Retry-After`."
)]
pub struct Unavailable(pub Envelope<'static>);

/// Any SCIM error, with its HTTP status repeated in the body (RFC 7644 §3.12).
#[derive(ToResponse)]
#[response(description = "A SCIM error.", content_type = "application/scim+json")]
pub struct ScimErrorResponse(pub super::ScimError);

/// Any error on `/v1/messages*`, in Anthropic's envelope.
#[derive(ToResponse)]
#[response(description = "An error in Anthropic's envelope, with the same status as elsewhere.")]
pub struct AnthropicErrorResponse(pub super::AnthropicError);
