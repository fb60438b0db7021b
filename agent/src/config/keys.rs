//! Ed25519 keys as the configuration and the key files give them: the base64 of 32 bytes
//! (`[commands] public_keys`; the private key file of `vigil command --key`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{SigningKey, VerifyingKey};

/// Why a key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not base64 of 32 bytes.
    #[error("not an Ed25519 key: expected the base64 of 32 bytes")]
    Format,
    /// 32 bytes, but not a point of the curve.
    #[error("not a valid Ed25519 public key")]
    Invalid,
}

/// A public key (base64 of its 32 bytes).
pub fn public_key(text: &str) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_bytes(&key_bytes(text)?).map_err(|_| KeyError::Invalid)
}

/// A private key (base64 of its 32-byte seed).
pub fn private_key(text: &str) -> Result<SigningKey, KeyError> {
    Ok(SigningKey::from_bytes(&key_bytes(text)?))
}

/// The base64 text of a key's 32 bytes (public or private).
pub fn encode_key(bytes: &[u8; 32]) -> String {
    STANDARD.encode(bytes)
}

fn key_bytes(text: &str) -> Result<[u8; 32], KeyError> {
    let raw = STANDARD.decode(text.trim()).map_err(|_| KeyError::Format)?;
    raw.try_into().map_err(|_| KeyError::Format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back_and_bad_ones_are_named() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let public = encode_key(key.verifying_key().as_bytes());
        assert_eq!(public_key(&public), Ok(key.verifying_key()));
        let private = encode_key(&key.to_bytes());
        assert_eq!(
            private_key(&private).map(|k| k.to_bytes()),
            Ok(key.to_bytes())
        );
        assert_eq!(public_key("abc"), Err(KeyError::Format));
        assert_eq!(
            public_key(&STANDARD.encode([1u8; 31])),
            Err(KeyError::Format)
        );
    }
}
