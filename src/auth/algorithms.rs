//! The signature algorithms tollgate verifies, and which key each needs.

use jsonwebtoken::DecodingKey;

/// Every algorithm an issuer may allow. `none` is not one of them, ever.
pub const SUPPORTED: [&str; 10] = [
    "HS256", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// The kind of key an algorithm verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    Hmac,
    Rsa,
    Ec,
    Ed,
}

/// The key family of a supported algorithm, or `None` if tollgate does not verify it.
pub fn family(algorithm: &str) -> Option<KeyFamily> {
    Some(match algorithm {
        "HS256" => KeyFamily::Hmac,
        "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => KeyFamily::Rsa,
        "ES256" | "ES384" => KeyFamily::Ec,
        "EdDSA" => KeyFamily::Ed,
        _ => return None,
    })
}

/// The algorithms allowed when an issuer names none: every one its keys can verify.
pub fn defaults_for(families: &[KeyFamily]) -> Vec<String> {
    let defaults: &[(&str, KeyFamily)] = &[
        ("HS256", KeyFamily::Hmac),
        ("RS256", KeyFamily::Rsa),
        ("RS384", KeyFamily::Rsa),
        ("RS512", KeyFamily::Rsa),
        ("PS256", KeyFamily::Rsa),
        ("PS384", KeyFamily::Rsa),
        ("PS512", KeyFamily::Rsa),
        ("ES256", KeyFamily::Ec),
        ("ES384", KeyFamily::Ec),
        ("EdDSA", KeyFamily::Ed),
    ];
    defaults
        .iter()
        .filter(|(_, family)| families.contains(family))
        .map(|(name, _)| (*name).to_owned())
        .collect()
}

/// Which family a PEM-encoded public key belongs to, if it parses as one.
pub fn pem_family(pem: &str) -> Option<KeyFamily> {
    let bytes = pem.as_bytes();
    if DecodingKey::from_rsa_pem(bytes).is_ok() {
        Some(KeyFamily::Rsa)
    } else if DecodingKey::from_ec_pem(bytes).is_ok() {
        Some(KeyFamily::Ec)
    } else if DecodingKey::from_ed_pem(bytes).is_ok() {
        Some(KeyFamily::Ed)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_is_never_supported() {
        assert_eq!(family("none"), None);
        assert_eq!(family("NONE"), None);
        assert_eq!(family("ES512"), None);
    }

    #[test]
    fn defaults_follow_the_key() {
        assert_eq!(defaults_for(&[KeyFamily::Hmac]), vec!["HS256"]);
        assert!(
            defaults_for(&[KeyFamily::Rsa])
                .iter()
                .all(|a| family(a) == Some(KeyFamily::Rsa))
        );
    }

    #[test]
    fn garbage_is_not_a_pem() {
        assert_eq!(
            pem_family("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"),
            None
        );
    }
}
