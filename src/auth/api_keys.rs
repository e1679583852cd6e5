//! API keys: `tg-` followed by 32 random bytes in base64url. Only the SHA-256 is stored; a key
//! is looked up by its hash, which is fast (~µs) and safe because the key has full entropy.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What every tollgate API key starts with, so it is told apart from a JWT at a glance.
pub const PREFIX: &str = "tg-";
const RANDOM_BYTES: usize = 32;
/// Characters of a key kept for display (`tg-` and a few more).
const SHOWN: usize = 10;

/// A fresh key: the secret for the caller, the hash for the store.
pub struct GeneratedKey {
    pub key: String,
    pub hash: String,
}

impl GeneratedKey {
    pub fn new() -> Result<Self, getrandom::Error> {
        Self::with_prefix(PREFIX)
    }

    /// A secret of the same strength for another use (SCIM tokens), told apart by its prefix.
    pub fn with_prefix(prefix: &str) -> Result<Self, getrandom::Error> {
        let mut random = [0u8; RANDOM_BYTES];
        getrandom::fill(&mut random)?;
        let key = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(random));
        let hash = hash(&key);
        Ok(Self { key, hash })
    }

    /// The displayable start of the key.
    pub fn prefix(&self) -> &str {
        let start = self.key.find('-').map_or(0, |dash| dash + 1);
        &self.key[..(start + SHOWN - PREFIX.len()).min(self.key.len())]
    }
}

/// Hex SHA-256 of a presented key: what the store is searched by.
pub fn hash(key: &str) -> String {
    hex::encode(super::sha256(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_random_and_hashed() {
        let a = GeneratedKey::new().unwrap();
        let b = GeneratedKey::new().unwrap();
        assert!(a.key.starts_with(PREFIX));
        assert_eq!(a.key.len(), PREFIX.len() + 43);
        assert_ne!(a.key, b.key);
        assert_eq!(a.hash, hash(&a.key));
        assert_eq!(a.hash.len(), 64);
        assert!(!a.hash.contains(&a.key[PREFIX.len()..]));
        assert!(a.key.starts_with(a.prefix()));
    }
}
