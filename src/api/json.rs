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
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() {
            format!("The request body is not valid JSON: {inner}")
        } else if inner.is_syntax() || inner.is_eof() {
            // Valid JSON of the wrong shape (an array where an object belongs, say).
            "Invalid request body: invalid type, expected a JSON object with this route's fields"
                .to_owned()
        } else if path == "." {
            format!("Invalid request body: {inner}")
        } else {
            format!("Invalid request body at `{path}`: {inner}")
        };
        ApiError::invalid_request(message)
    })?;
    deserializer.end().map_err(|_| {
        ApiError::invalid_request("The request body has data after the JSON value.")
    })?;
    Ok(value)
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
}
