//! Signed commands. When `[commands] public_keys` names Ed25519 public keys, the commands that
//! change what a box watches ([`SIGNED`]) must carry `sig`: the base64 Ed25519 signature, by
//! one of those keys, over
//!
//! ```text
//! {topic}\n{the request without "sig", as canonical JSON}
//! ```
//!
//! where canonical JSON has no white space, every object's keys sorted by their bytes and only
//! whole numbers (a request with a fraction is refused: fractions have no one printed form), and
//! `{topic}` is the topic the request is published on (so a signed request cannot be replayed
//! on another box or as another command; its `id` and `sent_at` bound it in time). Pure.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

pub use crate::config::keys::{KeyError, encode_key, private_key, public_key};
use serde_json::{Map, Value};

/// The commands that need a signature when keys are configured.
pub const SIGNED: &[&str] = &["clip", "arm", "disarm", "config"];

/// What is signed: `topic`, a newline, and `request` without `sig` as canonical JSON.
pub fn signed_bytes(topic: &str, request: &Map<String, Value>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(topic.as_bytes());
    out.push(b'\n');
    let mut rest = request.clone();
    rest.remove("sig");
    canonical(&Value::Object(rest), &mut out);
    out
}

/// `v` as canonical JSON into `out`.
fn canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(&Value::String(k.clone()), out);
                out.push(b':');
                canonical(&m[k], out);
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(x, out);
            }
            out.push(b']');
        }
        // Scalars: serde_json's compact form.
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

/// Whether `v` holds a number that is not a whole one.
fn has_fraction(v: &Value) -> bool {
    match v {
        Value::Number(n) => !(n.is_i64() || n.is_u64()),
        Value::Array(a) => a.iter().any(has_fraction),
        Value::Object(m) => m.values().any(has_fraction),
        _ => false,
    }
}

/// `sig` for `request` on `topic` by `key`.
pub fn sign(key: &SigningKey, topic: &str, request: &Map<String, Value>) -> String {
    STANDARD.encode(key.sign(&signed_bytes(topic, request)).to_bytes())
}

/// Whether `request` on `topic` carries a `sig` one of `keys` made: `Ok`, or the refusal's
/// code (`unsigned`, `bad_signature`) and message.
pub fn verify(
    keys: &[VerifyingKey],
    topic: &str,
    request: &Map<String, Value>,
) -> Result<(), (&'static str, String)> {
    let Some(sig) = request.get("sig") else {
        let message = "this box takes this command only signed: add \"sig\" (vigil command --key)";
        return Err(("unsigned", message.into()));
    };
    if request.values().any(has_fraction) {
        // Fractions print differently from one JSON library to the next: no canonical form.
        let message = "a signed request may hold only whole numbers";
        return Err(("bad_request", message.into()));
    }
    let bad = |why: &str| ("bad_signature", format!("the signature {why}"));
    let bytes = sig
        .as_str()
        .and_then(|s| STANDARD.decode(s).ok())
        .ok_or_else(|| bad("is not base64 text"))?;
    let sig = Signature::from_slice(&bytes).map_err(|_| bad("is not 64 bytes"))?;
    let message = signed_bytes(topic, request);
    if keys.iter().any(|k| k.verify_strict(&message, &sig).is_ok()) {
        Ok(())
    } else {
        Err(bad(
            "does not match the request with any key in commands.public_keys",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).expect("object")
    }

    #[test]
    fn a_signed_request_verifies_and_any_change_breaks_it() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let keys = [other.verifying_key(), key.verifying_key()];
        let topic = "vigil/v1/d1/box/cmd/disarm";
        let mut r = request(r#"{"id":"x","sent_at":"t","camera":"gate","args":{"b":1,"a":[2]}}"#);
        let sig = sign(&key, topic, &r);
        r.insert("sig".into(), sig.clone().into());
        assert_eq!(verify(&keys, topic, &r), Ok(()));
        // Key order and white space do not matter: the canonical form is signed.
        let reordered = request(&format!(
            r#"{{ "args": {{"a": [2], "b": 1}}, "camera": "gate", "sig": "{sig}", "sent_at": "t", "id": "x" }}"#
        ));
        assert_eq!(verify(&keys, topic, &reordered), Ok(()));
        let code = |topic: &str, r: &Map<String, Value>| verify(&keys, topic, r).map_err(|e| e.0);
        assert_eq!(
            code("vigil/v1/d1/other/cmd/disarm", &r),
            Err("bad_signature")
        );
        let mut changed = r.clone();
        changed.insert("camera".into(), "yard".into());
        assert_eq!(code(topic, &changed), Err("bad_signature"));
        changed = r.clone();
        changed.insert("sig".into(), "bm90IGEgc2ln".into());
        assert_eq!(code(topic, &changed), Err("bad_signature"));
        changed.remove("sig");
        assert_eq!(code(topic, &changed), Err("unsigned"));
        let mut fraction = request(r#"{"id":"x","n":0.1}"#);
        let sig = sign(&key, topic, &fraction);
        fraction.insert("sig".into(), sig.into());
        assert_eq!(code(topic, &fraction), Err("bad_request"));
        assert_eq!(
            verify(&[other.verifying_key()], topic, &r).map_err(|e| e.0),
            Err("bad_signature")
        );
    }
}
