//! Identifiers that arrive from outside, checked once at the edge.

use crate::error::ApiError;

/// Longest tenant id accepted.
pub const MAX_TENANT_ID: usize = 64;
/// Longest subject accepted, in bytes. Identity providers use long subjects (DNs, URLs).
pub const MAX_SUBJECT: usize = 512;
/// Longest free-text identifier (issuer, key name, jti), in bytes.
pub const MAX_TEXT: usize = 1024;

/// A tenant id: 1–64 characters of ASCII letters, digits, `.`, `_` and `-`. Tenant ids appear in
/// URLs, logs, metrics and CSV exports, so they stay plain.
pub fn tenant_id(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > MAX_TENANT_ID {
        return Err(ApiError::invalid_field(
            field,
            format!("`{field}` must be 1 to {MAX_TENANT_ID} characters long"),
        ));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(ApiError::invalid_field(
            field,
            format!("`{field}` may contain only ASCII letters, digits, '.', '_' and '-'"),
        ));
    }
    Ok(())
}

/// A subject: any string of 1 to [`MAX_SUBJECT`] bytes without control characters. Subjects are
/// opaque (`auth0|5f7c`, `CN=Jane,O=Acme`, e-mail addresses, URLs) and must round-trip unchanged.
pub fn subject(field: &str, value: &str) -> Result<(), ApiError> {
    text(field, value, MAX_SUBJECT)
}

/// Free text used as an identifier: 1 to `max` bytes, no control characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > max {
        return Err(ApiError::invalid_field(
            field,
            format!("`{field}` must be 1 to {max} bytes long"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            field,
            format!("`{field}` must not contain control characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_plain() {
        assert!(tenant_id("id", "acme-prod_1.eu").is_ok());
        assert!(tenant_id("id", "").is_err());
        assert!(tenant_id("id", &"a".repeat(65)).is_err());
        assert!(tenant_id("id", "a/b").is_err());
        assert!(tenant_id("id", "a\nb").is_err());
    }

    #[test]
    fn subjects_are_opaque_but_printable() {
        for ok in [
            "auth0|5f7c",
            "user@example.com",
            "CN=Jane,O=Acme",
            "a/b/c",
            "ünï",
        ] {
            assert!(subject("subject", ok).is_ok(), "{ok}");
        }
        assert!(subject("subject", "a\u{0}b").is_err());
        assert!(subject("subject", "a\tb").is_err());
        assert!(subject("subject", &"x".repeat(MAX_SUBJECT + 1)).is_err());
    }
}
