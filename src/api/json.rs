//! The JSON body extractor for every route: errors come back in OpenAI's envelope and name the
//! field at fault (`audiences[1]: invalid type: integer, expected a string`).

use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorKind};

/// Like `axum::Json`, with our errors.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(ErrorKind::PayloadTooLarge, "The request body is too large.")
                } else if crate::listener::timed_out(&rejection) {
                    ApiError::new(
                        ErrorKind::RequestTimeout,
                        "The request body did not arrive in time.",
                    )
                } else {
                    ApiError::invalid_request("The request body could not be read.")
                }
            })?;
        parse(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body, naming the path of the first problem.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::invalid_request(
            "The request body is empty; send JSON.",
        ));
    }
    // A well-formed body (nearly every one) is read once, without tracking where the reader is;
    // only a body that fails is read again to name the path of its problem. Deserialising is
    // deterministic, so the second reading fails where the first did.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() {
            return ApiError::invalid_request(format!(
                "The request body is not valid JSON: {inner}"
            ));
        }
        if inner.is_syntax() || inner.is_eof() {
            // Valid JSON of the wrong shape (an array where an object belongs, say).
            return ApiError::invalid_request(
                "Invalid request body: invalid type, expected a JSON object with this route's fields",
            );
        }
        let message = if path == "." {
            format!("Invalid request body: {inner}")
        } else {
            format!("Invalid request body at `{path}`: {inner}")
        };
        match field_at_fault(&path, &inner.to_string()) {
            Some(field) => ApiError::invalid_field(&field, message),
            None => ApiError::invalid_request(message),
        }
    })?;
    deserializer.end().map_err(|_| {
        ApiError::invalid_request("The request body has data after the JSON value.")
    })?;
    Ok(value)
}

/// The field a deserialisation error is about, as OpenAI's `param` names it (`messages[0].role`).
/// For a missing or unknown field serde names the field in its message and the path stops at
/// its parent.
fn field_at_fault(path: &str, message: &str) -> Option<String> {
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix)?.split('`').next());
    match (path, named) {
        (".", Some(name)) => Some(name.to_owned()),
        (".", None) => None,
        (path, Some(name)) if path.rsplit('.').next() != Some(name) => {
            Some(format!("{path}.{name}"))
        }
        (path, _) => Some(path.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        tags: Vec<String>,
    }

    fn error(json: &str) -> String {
        parse::<Body>(json.as_bytes()).unwrap_err().message
    }

    #[test]
    fn errors_name_the_field() {
        assert!(error(r#"{"name": 1, "tags": []}"#).contains("`name`"));
        assert!(error(r#"{"name": "a", "tags": ["x", 2]}"#).contains("`tags[1]`"));
        assert!(error(r#"{"name": "a"}"#).contains("missing field `tags`"));
        assert!(error(r#"{"name": "a", "tags": [], "x": 1}"#).contains("unknown field `x`"));
        assert!(error(r#"{"name": "a""#).contains("not valid JSON"));
        assert!(error(r#"{"name": "a", "tags": []} []"#).contains("after the JSON"));
        assert!(error("").contains("empty"));
    }

    fn param(json: &str) -> Option<String> {
        parse::<Body>(json.as_bytes()).unwrap_err().param
    }

    #[test]
    fn errors_fill_param_with_the_field() {
        assert_eq!(param(r#"{"name": 1, "tags": []}"#).as_deref(), Some("name"));
        assert_eq!(
            param(r#"{"name": "a", "tags": ["x", 2]}"#).as_deref(),
            Some("tags[1]")
        );
        assert_eq!(param(r#"{"name": "a"}"#).as_deref(), Some("tags"));
        assert_eq!(
            param(r#"{"name": "a", "tags": [], "x": 1}"#).as_deref(),
            Some("x")
        );
        assert_eq!(param(r#"{"name": "a""#), None, "not JSON: no field to name");
    }
}
