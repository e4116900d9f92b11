//! Time on the wire: the database keeps Unix milliseconds (UTC); the API speaks RFC 3339.
//!
//! `#[serde(with = "rfc3339")]` on an `i64` field (or `rfc3339::option` on `Option<i64>`) keeps the Rust
//! side in milliseconds while clients see and send `2026-11-23T08:00:00Z`.

pub mod rfc3339 {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn to_string(ms: i64) -> String {
        Timestamp::from_millisecond(ms).map(|t| t.to_string()).unwrap_or_else(|_| ms.to_string())
    }

    pub fn parse(s: &str) -> Result<i64, String> {
        s.parse::<Timestamp>().map(|t| t.as_millisecond()).map_err(|e| {
            format!("`{s}` is not an RFC 3339 time with an offset, e.g. 2026-11-23T08:00:00Z ({e})")
        })
    }

    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_string(*ms))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(D::Error::custom)
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
            match ms {
                Some(ms) => s.serialize_str(&to_string(*ms)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
            match Option::<String>::deserialize(d)? {
                Some(s) => parse(&s).map(Some).map_err(D::Error::custom),
                None => Ok(None),
            }
        }
    }
}
