//! Verification keys: from an HS256 secret, a PEM public key, or a JWK set.

use std::collections::HashMap;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::algorithms::{KeyFamily, pem_family};
use crate::store::KeySource;

/// Most keys read from one JWK set; more is a misconfigured or hostile endpoint.
pub const MAX_JWKS_KEYS: usize = 64;

/// One key, with what it may verify.
#[derive(Clone)]
pub struct VerificationKey {
    pub kid: Option<String>,
    pub family: KeyFamily,
    /// The EC curve, which pins ES256 to P-256 and ES384 to P-384.
    pub curve: Option<EllipticCurve>,
    /// The JWK's own `alg`, if it named one: then only that algorithm may use it.
    pub alg: Option<String>,
    pub key: DecodingKey,
}

impl VerificationKey {
    /// Whether this key may verify a token signed with `alg`.
    pub fn fits(&self, alg: &str) -> bool {
        if self.alg.as_deref().is_some_and(|own| own != alg) {
            return false;
        }
        let family_ok = super::algorithms::family(alg) == Some(self.family);
        let curve_ok = match (alg, &self.curve) {
            ("ES256", Some(curve)) => *curve == EllipticCurve::P256,
            ("ES384", Some(curve)) => *curve == EllipticCurve::P384,
            _ => true,
        };
        family_ok && curve_ok
    }
}

/// The keys of one issuer.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: Vec<VerificationKey>,
    by_kid: HashMap<String, usize>,
}

impl KeySet {
    pub fn new(keys: Vec<VerificationKey>) -> Self {
        let by_kid = keys
            .iter()
            .enumerate()
            .filter_map(|(i, key)| key.kid.clone().map(|kid| (kid, i)))
            .collect();
        Self { keys, by_kid }
    }

    /// The keys from a static source (secret or PEM); `None` for a JWKS URL.
    pub fn from_static(source: &KeySource) -> Option<Self> {
        let key = match source {
            KeySource::Hs256Secret(secret) => VerificationKey {
                kid: None,
                family: KeyFamily::Hmac,
                curve: None,
                alg: Some("HS256".to_owned()),
                key: DecodingKey::from_secret(secret.as_bytes()).ok()?,
            },
            KeySource::PublicKeyPem(pem) => {
                let bytes = pem.as_bytes();
                let (family, key) = match pem_family(pem)? {
                    KeyFamily::Rsa => (KeyFamily::Rsa, DecodingKey::from_rsa_pem(bytes).ok()?),
                    KeyFamily::Ec => (KeyFamily::Ec, DecodingKey::from_ec_pem(bytes).ok()?),
                    KeyFamily::Ed => (KeyFamily::Ed, DecodingKey::from_ed_pem(bytes).ok()?),
                    KeyFamily::Hmac => return None,
                };
                VerificationKey {
                    kid: None,
                    family,
                    curve: None,
                    alg: None,
                    key,
                }
            }
            KeySource::JwksUrl(_) => return None,
        };
        Some(Self::new(vec![key]))
    }

    /// Reads a JWK set document. Symmetric (`oct`) keys, encryption keys and keys that do not
    /// parse are skipped and reported, never trusted.
    pub fn from_jwks(document: &[u8]) -> Result<(Self, Vec<String>), String> {
        let value: Value =
            serde_json::from_slice(document).map_err(|e| format!("the JWKS is not JSON: {e}"))?;
        let Some(entries) = value.get("keys").and_then(Value::as_array) else {
            return Err("the JWKS has no `keys` array".to_owned());
        };
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for (i, entry) in entries.iter().enumerate().take(MAX_JWKS_KEYS) {
            let label = entry
                .get("kid")
                .and_then(Value::as_str)
                .map_or_else(|| format!("#{i}"), |kid| format!("`{kid}`"));
            if entry.get("kty").and_then(Value::as_str) == Some("oct") {
                skipped.push(format!(
                    "{label}: symmetric (oct) keys are never taken from a JWKS"
                ));
                continue;
            }
            let jwk: Jwk = match serde_json::from_value(entry.clone()) {
                Ok(jwk) => jwk,
                Err(e) => {
                    skipped.push(format!("{label}: unreadable ({e})"));
                    continue;
                }
            };
            if matches!(jwk.common.public_key_use, Some(ref usage) if *usage != PublicKeyUse::Signature)
            {
                skipped.push(format!("{label}: not a signing key (`use` is not `sig`)"));
                continue;
            }
            let (family, curve) = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => (KeyFamily::Rsa, None),
                AlgorithmParameters::EllipticCurve(ec) => (KeyFamily::Ec, Some(ec.curve.clone())),
                AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
                    (KeyFamily::Ed, None)
                }
                _ => {
                    skipped.push(format!("{label}: unsupported key type"));
                    continue;
                }
            };
            let key = match DecodingKey::from_jwk(&jwk) {
                Ok(key) => key,
                Err(e) => {
                    skipped.push(format!("{label}: {e}"));
                    continue;
                }
            };
            let alg = entry.get("alg").and_then(Value::as_str).map(str::to_owned);
            keys.push(VerificationKey {
                kid: jwk.common.key_id.clone(),
                family,
                curve,
                alg,
                key,
            });
        }
        Ok((Self::new(keys), skipped))
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The kids this set holds, for an operator's hint.
    pub fn kids(&self) -> Vec<String> {
        self.keys.iter().filter_map(|k| k.kid.clone()).collect()
    }

    /// The candidate keys for a token: the one with its `kid`, or without a `kid` every key
    /// that fits the algorithm. `None` when a `kid` was given and is not here.
    pub fn candidates<'a>(
        &'a self,
        kid: Option<&str>,
        alg: &'a str,
    ) -> Option<Vec<&'a VerificationKey>> {
        match kid {
            Some(kid) => match self.by_kid.get(kid) {
                Some(&i) => Some(vec![&self.keys[i]]),
                // A static key has no kid: a token naming one still gets verified against it.
                None if self.keys.iter().all(|k| k.kid.is_none()) => {
                    Some(self.keys.iter().filter(|k| k.fits(alg)).collect())
                }
                None => None,
            },
            None => Some(self.keys.iter().filter(|k| k.fits(alg)).collect()),
        }
    }
}

/// Verifies `signature` over `signing_input` with `key` as `alg`.
pub fn verify(signing_input: &str, signature: &str, key: &VerificationKey, alg: &str) -> bool {
    let Ok(algorithm) = alg.parse::<Algorithm>() else {
        return false;
    };
    key.fits(alg)
        && jsonwebtoken::crypto::verify(signature, signing_input.as_bytes(), &key.key, algorithm)
            .unwrap_or(false)
}
