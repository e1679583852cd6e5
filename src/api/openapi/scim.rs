//! The shapes of SCIM's JSON (RFC 7643/7644) as tollgate answers them. The handlers build
//! resources as JSON values (a resource is whatever attributes the identity provider sent, with
//! `id` and `meta` added), so these types describe them for the document only.

use std::collections::BTreeMap;

use serde_json::Value;
use utoipa::ToSchema;

/// A SCIM error (RFC 7644 §3.12).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScimError {
    /// `["urn:ietf:params:scim:api:messages:2.0:Error"]`.
    pub schemas: Vec<String>,
    /// The HTTP status, as a string.
    pub status: String,
    pub detail: String,
    /// `invalidFilter`, `invalidPath`, `invalidValue`, `invalidSyntax`, `noTarget` or
    /// `uniqueness`, when one applies.
    pub scim_type: Option<String>,
}

/// A User or Group resource, or a discovery document: the attributes RFC 7643 defines for it.
/// In a request, what the identity provider sends; in an answer, that with `id` and `meta`.
#[derive(ToSchema)]
pub struct ScimResource {
    pub schemas: Option<Vec<String>>,
    #[serde(flatten)]
    pub attributes: BTreeMap<String, Value>,
}

/// A page of resources (RFC 7644 §3.4.2).
#[derive(ToSchema)]
pub struct ScimListResponse {
    pub schemas: Vec<String>,
    #[serde(rename = "totalResults")]
    pub total_results: u64,
    #[serde(rename = "startIndex")]
    pub start_index: u64,
    #[serde(rename = "itemsPerPage")]
    pub items_per_page: u64,
    #[serde(rename = "Resources")]
    pub resources: Vec<ScimResource>,
}

/// A PATCH request (RFC 7644 §3.5.2).
#[derive(ToSchema)]
pub struct ScimPatch {
    pub schemas: Option<Vec<String>>,
    #[serde(rename = "Operations")]
    pub operations: Vec<ScimPatchOperation>,
}

/// One PATCH operation.
#[derive(ToSchema)]
pub struct ScimPatchOperation {
    /// `add`, `replace` or `remove` (any case).
    pub op: String,
    pub path: Option<String>,
    pub value: Option<Value>,
}
