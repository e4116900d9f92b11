//! The JWS envelope (RFC 7515) of a signed message, EdDSA (Ed25519, RFC 8037) only.
//!
//! Accepted forms: the compact serialisation (`header.payload.signature`), the flattened JSON
//! serialisation (`{"protected", "payload", "signature"}`) and the general JSON serialisation with exactly
//! one signature. Everything the signer says about the message (`alg`, `kid`) must be in the protected
//! header, so an unprotected `header` member is refused. Sizes are checked before anything is decoded.
//!
//! No maintained JWS crate fits: `jsonwebtoken` reads only compact JWTs with claim validation, and the
//! general-purpose JOSE crates bring RSA/ECDSA stacks we would have to switch off. The format is small:
//! three base64url parts, one signature over `protected || "." || payload`.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::Deserialize;
use serde_json::{Value, json};

/// The protected header's size limit (decoded). Ours are ~60 bytes; anything near this is not a header.
pub const MAX_HEADER_BYTES: usize = 1024;

/// Why an envelope was refused, with the rule's stable name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeError {
    pub rule: &'static str,
    pub message: String,
}

fn refuse(rule: &'static str, message: impl Into<String>) -> EnvelopeError {
    EnvelopeError { rule, message: message.into() }
}

/// The protected header members we read; others (`cty`, …) are allowed and ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Header {
    pub alg: String,
    pub typ: Option<String>,
    pub kid: Option<String>,
    pub crit: Option<Value>,
    pub b64: Option<bool>,
}

/// A parsed, not yet verified envelope.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub header: Header,
    /// The signer's key id: the username the key is registered to.
    pub kid: String,
    protected_b64: String,
    payload_b64: String,
    signature: Signature,
    /// The decoded payload bytes, exactly as signed.
    pub payload: Vec<u8>,
}

impl Envelope {
    /// Parses a compact string or a JSON object envelope of at most `max_bytes` (its serialised size).
    pub fn parse(value: &Value, max_bytes: usize) -> Result<Envelope, EnvelopeError> {
        match value {
            Value::String(compact) => Self::parse_compact(compact, max_bytes),
            Value::Object(map) => {
                // A JSON envelope came out of a body whose size is bounded; its parts are re-checked below.
                let field = |name: &str| -> Result<&str, EnvelopeError> {
                    map.get(name).and_then(Value::as_str).ok_or_else(|| {
                        refuse("malformed_envelope", format!("the JSON envelope needs a string `{name}`"))
                    })
                };
                if map.contains_key("header") {
                    return Err(refuse(
                        "unprotected_header",
                        "put every header member in `protected`: an unprotected header is not signed",
                    ));
                }
                let payload = field("payload")?;
                let (protected, signature) = match map.get("signatures") {
                    Some(Value::Array(sigs)) => {
                        let [one] = sigs.as_slice() else {
                            return Err(refuse("malformed_envelope", "send exactly one signature"));
                        };
                        if one.get("header").is_some() {
                            return Err(refuse(
                                "unprotected_header",
                                "put every header member in `protected`: an unprotected header is not signed",
                            ));
                        }
                        let get = |name: &str| {
                            one.get(name).and_then(Value::as_str).ok_or_else(|| {
                                refuse("malformed_envelope", format!("the signature needs a string `{name}`"))
                            })
                        };
                        (get("protected")?, get("signature")?)
                    }
                    Some(_) => return Err(refuse("malformed_envelope", "`signatures` must be an array")),
                    None => (field("protected")?, field("signature")?),
                };
                Self::from_parts(protected, payload, signature, max_bytes)
            }
            _ => Err(refuse(
                "malformed_envelope",
                "a message is a compact JWS string or a JWS JSON object (`protected`, `payload`, `signature`)",
            )),
        }
    }

    pub fn parse_compact(compact: &str, max_bytes: usize) -> Result<Envelope, EnvelopeError> {
        if compact.len() > max_bytes {
            return Err(too_large(max_bytes));
        }
        let mut parts = compact.trim().split('.');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(h), Some(p), Some(s), None) => Self::from_parts(h, p, s, max_bytes),
            _ => Err(refuse("malformed_envelope", "a compact JWS has exactly three dot-separated parts")),
        }
    }

    fn from_parts(
        protected_b64: &str,
        payload_b64: &str,
        signature_b64: &str,
        max_bytes: usize,
    ) -> Result<Envelope, EnvelopeError> {
        if protected_b64.len() + payload_b64.len() + signature_b64.len() + 2 > max_bytes {
            return Err(too_large(max_bytes));
        }
        if protected_b64.len() > MAX_HEADER_BYTES * 4 / 3 + 4 {
            return Err(refuse(
                "malformed_envelope",
                format!("the protected header exceeds {MAX_HEADER_BYTES} bytes"),
            ));
        }
        let decode = |part: &str, what: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| refuse("malformed_envelope", format!("the {what} is not unpadded base64url")))
        };
        let header_bytes = decode(protected_b64, "protected header")?;
        let header: Header = serde_json::from_slice(&header_bytes).map_err(|e| {
            refuse("malformed_envelope", format!("the protected header is not a JSON object: {e}"))
        })?;
        if header.alg != "EdDSA" {
            return Err(refuse(
                "unsupported_alg",
                format!("`alg` must be `EdDSA` (Ed25519), not `{}`", header.alg),
            ));
        }
        if header.crit.is_some() || header.b64.is_some() {
            return Err(refuse("unsupported_header", "`crit` and `b64` are not supported; leave them out"));
        }
        let kid = match &header.kid {
            Some(k) if !k.is_empty() && k.len() <= 128 => k.clone(),
            _ => {
                return Err(refuse(
                    "missing_kid",
                    "the protected header needs `kid`: the username the signing key is registered to",
                ));
            }
        };
        let payload = decode(payload_b64, "payload")?;
        let signature = decode(signature_b64, "signature")?;
        let signature = Signature::from_slice(&signature)
            .map_err(|_| refuse("malformed_envelope", "an Ed25519 signature has 64 bytes"))?;
        Ok(Envelope {
            header,
            kid,
            protected_b64: protected_b64.to_string(),
            payload_b64: payload_b64.to_string(),
            signature,
            payload,
        })
    }

    /// Checks the signature with `key` (strict verification: no malleable or small-order forms).
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), EnvelopeError> {
        key.verify_strict(self.signing_input().as_bytes(), &self.signature).map_err(|_| {
            refuse(
                "bad_signature",
                format!("the signature does not verify with the key registered to `{}`", self.kid),
            )
        })
    }

    fn signing_input(&self) -> String {
        format!("{}.{}", self.protected_b64, self.payload_b64)
    }

    /// The envelope in compact form, as kept for evidence (any JSON form is re-serialised compactly;
    /// the signature covers the same bytes either way).
    pub fn compact(&self) -> String {
        format!("{}.{}", self.signing_input(), URL_SAFE_NO_PAD.encode(self.signature.to_bytes()))
    }
}

fn too_large(max_bytes: usize) -> EnvelopeError {
    refuse("message_too_large", format!("one signed message may have at most {max_bytes} bytes"))
}

/// Signs `payload` as a compact JWS with `kid` and `typ` in the protected header.
pub fn sign_compact(key: &SigningKey, kid: &str, typ: &str, payload: &[u8]) -> String {
    let header = json!({"alg": "EdDSA", "kid": kid, "typ": typ}).to_string();
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn signed() -> String {
        sign_compact(&key(), "ent1-operator", "fieldcheck-message+jws", br#"{"type":"application.draft"}"#)
    }

    #[test]
    fn a_compact_envelope_signed_with_the_key_verifies_and_keeps_the_payload_bytes() {
        let env = Envelope::parse(&Value::String(signed()), 4096).unwrap();
        assert_eq!(env.kid, "ent1-operator");
        assert_eq!(env.payload, br#"{"type":"application.draft"}"#);
        env.verify(&key().verifying_key()).unwrap();
        assert_eq!(env.compact(), signed());
    }

    #[test]
    fn the_flattened_and_general_json_forms_carry_the_same_signature() {
        let compact = signed();
        let parts: Vec<&str> = compact.split('.').collect();
        let flat = json!({"protected": parts[0], "payload": parts[1], "signature": parts[2]});
        let general =
            json!({"payload": parts[1], "signatures": [{"protected": parts[0], "signature": parts[2]}]});
        for v in [flat, general] {
            let env = Envelope::parse(&v, 4096).unwrap();
            env.verify(&key().verifying_key()).unwrap();
            assert_eq!(env.compact(), compact);
        }
    }

    #[test]
    fn one_changed_payload_byte_fails_verification() {
        let compact = signed();
        let parts: Vec<&str> = compact.split('.').collect();
        let tampered = URL_SAFE_NO_PAD.encode(br#"{"type":"application.submit"}"#);
        let env = Envelope::parse_compact(&format!("{}.{tampered}.{}", parts[0], parts[2]), 4096).unwrap();
        assert_eq!(env.verify(&key().verifying_key()).unwrap_err().rule, "bad_signature");
    }

    #[test]
    fn another_key_fails_verification() {
        let env = Envelope::parse_compact(&signed(), 4096).unwrap();
        let other = SigningKey::from_bytes(&[8u8; 32]).verifying_key();
        assert_eq!(env.verify(&other).unwrap_err().rule, "bad_signature");
    }

    #[test]
    fn malformed_envelopes_are_refused_with_the_rule_named() {
        let b = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let sig = URL_SAFE_NO_PAD.encode([0u8; 64]);
        let p = URL_SAFE_NO_PAD.encode("{}");
        let cases = [
            ("two parts", "abc.def".to_string(), "malformed_envelope"),
            ("four parts", "a.b.c.d".to_string(), "malformed_envelope"),
            ("not base64", format!("!!.{p}.{sig}"), "malformed_envelope"),
            ("alg none", format!("{}.{p}.{sig}", b(json!({"alg": "none", "kid": "x"}))), "unsupported_alg"),
            ("hs256", format!("{}.{p}.{sig}", b(json!({"alg": "HS256", "kid": "x"}))), "unsupported_alg"),
            ("no kid", format!("{}.{p}.{sig}", b(json!({"alg": "EdDSA"}))), "missing_kid"),
            (
                "crit",
                format!(
                    "{}.{p}.{sig}",
                    b(json!({"alg": "EdDSA", "kid": "x", "crit": ["b64"], "b64": false}))
                ),
                "unsupported_header",
            ),
            (
                "short signature",
                format!("{}.{p}.AAAA", b(json!({"alg": "EdDSA", "kid": "x"}))),
                "malformed_envelope",
            ),
            (
                "too large",
                format!("{}.{}.{sig}", b(json!({"alg": "EdDSA", "kid": "x"})), "A".repeat(5000)),
                "message_too_large",
            ),
        ];
        for (name, compact, rule) in cases {
            let err = Envelope::parse(&Value::String(compact), 4096).unwrap_err();
            assert_eq!(err.rule, rule, "{name}: {}", err.message);
        }
        let unprotected = json!({"protected": "e30", "header": {"kid": "x"}, "payload": p, "signature": sig});
        assert_eq!(Envelope::parse(&unprotected, 4096).unwrap_err().rule, "unprotected_header");
        assert_eq!(Envelope::parse(&json!(42), 4096).unwrap_err().rule, "malformed_envelope");
    }
}
