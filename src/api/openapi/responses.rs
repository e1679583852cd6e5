//! The error responses operations share, each a reusable component: OpenAI's envelope on the
//! admin API and the OpenAI-style data plane, SCIM's error under `/scim`, Anthropic's on
//! `/v1/messages*`. Declaring them is what lets schemathesis check that every 4xx is in its
//! envelope.

use std::collections::BTreeMap;

use utoipa::openapi::{Ref, RefOr, Response};
use utoipa::{IntoResponses, ToResponse};

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

/// What a routed data-plane call can be refused with or fail with (400 to 504), so that the
/// routes list them once: [`RoutedFailures`] in OpenAI's envelope, [`AnthropicRoutedFailures`] in
/// Anthropic's.
const ROUTED_FAILURES: [(&str, &str); 8] = [
    ("400", "BadRequest"),
    ("401", "Unauthorized"),
    ("403", "Forbidden"),
    ("404", "NotFound"),
    ("429", "TooManyRequests"),
    ("502", "UpstreamFailed"),
    ("503", "Unavailable"),
    ("504", "UpstreamFailed"),
];

/// [`ROUTED_FAILURES`], each the shared response of that name.
pub struct RoutedFailures;

impl IntoResponses for RoutedFailures {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        ROUTED_FAILURES
            .into_iter()
            .map(|(status, name)| (status.to_owned(), RefOr::Ref(Ref::from_response_name(name))))
            .collect()
    }
}

/// [`ROUTED_FAILURES`]' statuses, each in Anthropic's envelope.
pub struct AnthropicRoutedFailures;

impl IntoResponses for AnthropicRoutedFailures {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        ROUTED_FAILURES
            .into_iter()
            .map(|(status, _)| {
                let name = "AnthropicErrorResponse";
                (status.to_owned(), RefOr::Ref(Ref::from_response_name(name)))
            })
            .collect()
    }
}
