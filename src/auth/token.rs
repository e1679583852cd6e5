//! Strict parsing of a compact JWS before any key is touched.
//!
//! Everything a forger could use to steer verification is refused here: `alg: none`, keys
//! carried in the header (`jwk`, `jku`, `x5u`, `x5c`), critical extensions, unencoded payloads
//! (`b64`), a JWT nested in a JWT, non-canonical base64url, duplicate JSON keys and oversized
//! tokens. The header's `alg` is only ever compared with the issuer's allow-list.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::reason::Reason;

/// Tokens longer than this are refused unread (a real access token is 1–2 KiB).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// A token split and decoded, not yet verified.
#[derive(Debug)]
pub struct UnverifiedToken<'a> {
    pub alg: String,
    pub kid: Option<String>,
    pub claims: Map<String, Value>,
    /// `base64url(header) "." base64url(payload)`: what the signature covers.
    pub signing_input: &'a str,
    /// The third part, still base64url (checked canonical).
    pub signature: &'a str,
}

/// Why a token could not even be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Reason,
    pub detail: String,
}

impl Refusal {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

fn malformed(detail: impl Into<String>) -> Refusal {
    Refusal::new(Reason::MalformedToken, detail)
}

/// The header fields tollgate reads; anything else in the header is ignored.
#[derive(Deserialize)]
struct Header {
    alg: Option<Value>,
    kid: Option<Value>,
    cty: Option<Value>,
    crit: Option<Value>,
    b64: Option<Value>,
    jwk: Option<Value>,
    jku: Option<Value>,
    x5u: Option<Value>,
    x5c: Option<Value>,
}

/// Splits, decodes and checks the form of a compact JWS.
pub fn parse(token: &str) -> Result<UnverifiedToken<'_>, Refusal> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(malformed(format!(
            "the token is {} bytes; the limit is {MAX_TOKEN_BYTES}",
            token.len()
        )));
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(
            "not a compact JWS: expected three base64url parts separated by dots",
        ));
    };
    let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
    let header_json = decode_part("header", header_b64)?;
    let payload_json = decode_part("payload", payload_b64)?;
    let signature_bytes = decode_part("signature", signature)?;
    if signature_bytes.is_empty() {
        return Err(Refusal::new(
            Reason::UnsupportedAlgorithm,
            "the token is unsigned (empty signature)",
        ));
    }

    let header_map: UniqueMap = serde_json::from_slice(&header_json)
        .map_err(|e| malformed(format!("the header is not a JSON object: {e}")))?;
    let header: Header = serde_json::from_value(Value::Object(header_map.0))
        .map_err(|e| malformed(format!("the header is not a JSON object: {e}")))?;
    for (name, value) in [
        ("jwk", &header.jwk),
        ("jku", &header.jku),
        ("x5u", &header.x5u),
        ("x5c", &header.x5c),
    ] {
        if value.is_some() {
            return Err(malformed(format!(
                "the header carries its own key source (`{name}`); keys come only from the issuer's configuration"
            )));
        }
    }
    if header.crit.is_some() {
        return Err(malformed(
            "the header has `crit`; tollgate understands no critical extensions",
        ));
    }
    if header.b64.is_some() {
        return Err(malformed(
            "the header has `b64`; unencoded payloads are refused",
        ));
    }
    if let Some(cty) = &header.cty
        && cty.as_str().is_some_and(|c| c.eq_ignore_ascii_case("jwt"))
    {
        return Err(malformed("a JWT nested in a JWT (`cty: JWT`) is refused"));
    }
    let alg = match header.alg {
        Some(Value::String(alg)) => alg,
        _ => return Err(malformed("the header has no `alg` string")),
    };
    if alg.eq_ignore_ascii_case("none") {
        return Err(Refusal::new(
            Reason::UnsupportedAlgorithm,
            "`alg: none` (an unsigned token) is never accepted",
        ));
    }
    let kid = match header.kid {
        None => None,
        Some(Value::String(kid)) => Some(kid),
        Some(_) => return Err(malformed("the header's `kid` is not a string")),
    };
    let claims: UniqueMap = serde_json::from_slice(&payload_json)
        .map_err(|e| malformed(format!("the payload is not a JSON object: {e}")))?;
    Ok(UnverifiedToken {
        alg,
        kid,
        claims: claims.0,
        signing_input,
        signature,
    })
}

/// Decodes one part: base64url without padding, canonical (no stray trailing bits).
fn decode_part(name: &str, part: &str) -> Result<Vec<u8>, Refusal> {
    if !part
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(malformed(format!(
            "the {name} is not base64url (padding, whitespace or other characters)"
        )));
    }
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| malformed(format!("the {name} is not canonical base64url")))
}

/// A JSON object whose keys are all different. `serde_json` lets a later duplicate win; two
/// parsers disagreeing on which `sub` counts is how tokens get confused, so duplicates are refused.
struct UniqueMap(Map<String, Value>);

impl<'de> Deserialize<'de> for UniqueMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UniqueVisitor;

        impl<'de> Visitor<'de> for UniqueVisitor {
            type Value = UniqueMap;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<UniqueMap, A::Error> {
                let mut map = Map::new();
                while let Some((key, value)) = access.next_entry::<String, Value>()? {
                    if map.contains_key(&key) {
                        return Err(de::Error::custom(format!("duplicate key `{key}`")));
                    }
                    map.insert(key, value);
                }
                Ok(UniqueMap(map))
            }
        }

        deserializer.deserialize_map(UniqueVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    fn token(header: &str, payload: &str) -> String {
        format!(
            "{}.{}.{}",
            b64(header),
            b64(payload),
            b64("signature-bytes")
        )
    }

    fn reason(token: &str) -> Reason {
        parse(token).unwrap_err().reason
    }

    #[test]
    fn reads_a_well_formed_token() {
        let t = token(
            r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#,
            r#"{"iss":"x","sub":"y"}"#,
        );
        let parsed = parse(&t).unwrap();
        assert_eq!(parsed.alg, "RS256");
        assert_eq!(parsed.kid.as_deref(), Some("k1"));
        assert_eq!(parsed.claims["sub"], "y");
        assert_eq!(parsed.signing_input, &t[..t.rfind('.').unwrap()]);
    }

    #[test]
    fn refuses_forged_headers() {
        let p = r#"{"sub":"y"}"#;
        for alg in ["none", "None", "NONE", "nOnE"] {
            let t = token(&format!(r#"{{"alg":"{alg}"}}"#), p);
            assert_eq!(reason(&t), Reason::UnsupportedAlgorithm, "{alg}");
        }
        for header in [
            r#"{"alg":"RS256","jwk":{"kty":"RSA","n":"x","e":"AQAB"}}"#,
            r#"{"alg":"RS256","jku":"http://evil.example/jwks"}"#,
            r#"{"alg":"RS256","x5u":"http://evil.example/cert"}"#,
            r#"{"alg":"RS256","x5c":["MIIB"]}"#,
            r#"{"alg":"RS256","crit":["exp"],"exp":1}"#,
            r#"{"alg":"RS256","b64":false,"crit":["b64"]}"#,
            r#"{"alg":"RS256","cty":"JWT"}"#,
            r#"{"alg":"RS256","alg":"HS256"}"#,
            r#"{"kid":"k"}"#,
            r#"{"alg":"RS256","kid":7}"#,
            r#"["alg","RS256"]"#,
        ] {
            assert_eq!(
                reason(&token(header, p)),
                Reason::MalformedToken,
                "{header}"
            );
        }
    }

    #[test]
    fn refuses_malformed_encodings() {
        let good = token(r#"{"alg":"RS256"}"#, r#"{"sub":"y"}"#);
        let (head, rest) = good.split_once('.').unwrap();
        for bad in [
            "".to_owned(),
            "abc".to_owned(),
            format!("{head}.{rest}.extra"),
            format!("{head}=.{rest}"),
            format!("{head} .{rest}"),
            format!("{head}+.{rest}"),
            // "e30" is "{}"; "e31" decodes to the same bytes with a stray trailing bit.
            format!("e31.{rest}"),
            "x".repeat(MAX_TOKEN_BYTES + 1),
        ] {
            assert_eq!(reason(&bad), Reason::MalformedToken, "{bad}");
        }
        let unsigned = format!("{}.{}.", b64(r#"{"alg":"RS256"}"#), b64("{}"));
        assert_eq!(reason(&unsigned), Reason::UnsupportedAlgorithm);
        let duplicate = token(r#"{"alg":"RS256"}"#, r#"{"sub":"a","sub":"b"}"#);
        assert_eq!(reason(&duplicate), Reason::MalformedToken);
    }
}
