//! Free text from clients: names, reasons, opinions. Parse, don't validate: a [`Text`] is bounded and
//! holds only characters that display as what they are, so no handler needs to check it again.
//!
//! Refused: more than `MAX` characters (a 1 MB "name" is not a name, and every copy of it costs), control
//! characters (NUL truncates strings in C-based tools and terminals obey escape sequences; line breaks and
//! tabs are allowed where `MULTILINE`), and the Unicode bidirectional controls, which make text display
//! in another order than it is stored ("Trojan Source": a consignee name that reads differently in the
//! review screen than in the database).

use std::{borrow::Cow, fmt, ops::Deref};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};
use utoipa::openapi::{ObjectBuilder, RefOr, Schema, Type};

/// Free text of at most `MAX` characters; one line unless `MULTILINE`. See [`Line`] and [`Paragraph`].
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Text<const MAX: usize, const MULTILINE: bool>(String);

/// One line: a name, a title, a unit of measure.
pub type Line<const MAX: usize> = Text<MAX, false>;
/// Several lines (line breaks and tabs allowed): an opinion, a reason, feedback.
pub type Paragraph<const MAX: usize> = Text<MAX, true>;

/// What is wrong with a text; the message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("is {len} characters long; at most {max} are allowed")]
    TooLong { len: usize, max: usize },
    #[error("contains the control character U+{code:04X} at character {at}; remove it")]
    Control { code: u32, at: usize },
    #[error(
        "contains the bidirectional control U+{code:04X} at character {at}, which makes text display in another order than it is written; remove it"
    )]
    Bidi { code: u32, at: usize },
}

/// The explicit bidirectional formatting characters (Unicode UAX #9): marks, embeddings, overrides and
/// isolates.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

impl<const MAX: usize, const MULTILINE: bool> Text<MAX, MULTILINE> {
    pub fn parse(s: impl Into<String>) -> Result<Self, TextError> {
        let s = s.into();
        // Counting stops early: a huge input is refused without walking all of it.
        let len = s.chars().take(MAX + 1).count();
        if len > MAX {
            return Err(TextError::TooLong { len: s.chars().count(), max: MAX });
        }
        for (i, c) in s.chars().enumerate() {
            let allowed_break = MULTILINE && matches!(c, '\n' | '\r' | '\t');
            if c.is_control() && !allowed_break {
                return Err(TextError::Control { code: c.into(), at: i + 1 });
            }
            if is_bidi_control(c) {
                return Err(TextError::Bidi { code: c.into(), at: i + 1 });
            }
        }
        Ok(Text(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<const MAX: usize, const MULTILINE: bool> Deref for Text<MAX, MULTILINE> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize, const MULTILINE: bool> fmt::Display for Text<MAX, MULTILINE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const MAX: usize, const MULTILINE: bool> fmt::Debug for Text<MAX, MULTILINE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<const MAX: usize, const MULTILINE: bool> From<Text<MAX, MULTILINE>> for String {
    fn from(t: Text<MAX, MULTILINE>) -> String {
        t.0
    }
}

impl<const MAX: usize, const MULTILINE: bool> Serialize for Text<MAX, MULTILINE> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de, const MAX: usize, const MULTILINE: bool> Deserialize<'de> for Text<MAX, MULTILINE> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Text::parse(String::deserialize(d)?).map_err(D::Error::custom)
    }
}

impl<const MAX: usize, const MULTILINE: bool> utoipa::PartialSchema for Text<MAX, MULTILINE> {
    fn schema() -> RefOr<Schema> {
        let (breaks, pattern) = if MULTILINE {
            (
                "; line breaks and tabs allowed",
                r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]*$",
            )
        } else {
            ("", r"^[^\x00-\x1F\x7F-\x9F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]*$")
        };
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(MAX))
            .pattern(Some(pattern))
            .description(Some(format!(
                "Text of at most {MAX} characters, without control characters or bidirectional controls{breaks}."
            )))
            .into()
    }
}

impl<const MAX: usize, const MULTILINE: bool> utoipa::ToSchema for Text<MAX, MULTILINE> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(if MULTILINE { format!("Paragraph{MAX}") } else { format!("Line{MAX}") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_within_the_bound_is_kept_as_written() {
        let name = Line::<20>::parse("Zhejiang 果品 Co.").unwrap();
        assert_eq!(name.as_str(), "Zhejiang 果品 Co.");
        assert_eq!(Line::<3>::parse("三个字").unwrap().len(), "三个字".len(), "characters count, not bytes");
        assert!(Line::<5>::parse("").is_ok(), "emptiness is the caller's rule, not the type's");
    }

    #[test]
    fn text_over_the_bound_is_refused_with_its_length() {
        let err = Line::<200>::parse("x".repeat(1_000_000)).unwrap_err();
        assert_eq!(err, TextError::TooLong { len: 1_000_000, max: 200 });
        assert_eq!(err.to_string(), "is 1000000 characters long; at most 200 are allowed");
    }

    #[test]
    fn nul_and_other_control_characters_are_refused_with_their_position() {
        let err = Line::<50>::parse("Acme\0 Ltd").unwrap_err();
        assert_eq!(err, TextError::Control { code: 0, at: 5 });
        assert!(err.to_string().contains("U+0000"));
        assert!(Line::<50>::parse("bell\u{7}").is_err());
        assert!(Line::<50>::parse("esc\u{1b}[31m").is_err());
        assert!(Line::<50>::parse("c1\u{85}").is_err());
        assert!(Line::<50>::parse("two\nlines").is_err(), "a line has no line break");
    }

    #[test]
    fn a_paragraph_may_break_lines_but_not_hold_other_controls() {
        assert!(Paragraph::<50>::parse("first line\r\n\tsecond line").is_ok());
        assert!(Paragraph::<50>::parse("nul\0").is_err());
    }

    #[test]
    fn bidirectional_controls_are_refused() {
        for c in ['\u{202E}', '\u{202A}', '\u{2066}', '\u{2069}', '\u{200F}', '\u{061C}'] {
            let err = Paragraph::<50>::parse(format!("abc{c}def")).unwrap_err();
            assert_eq!(err, TextError::Bidi { code: c.into(), at: 4 }, "{c:?}");
        }
        assert!(Line::<50>::parse("عربي and English").is_ok(), "right-to-left script itself is fine");
    }

    #[test]
    fn deserializing_parses_so_a_bad_value_never_reaches_a_handler() {
        let ok: Line<10> = serde_json::from_str("\"fine\"").unwrap();
        assert_eq!(&*ok, "fine");
        let err = serde_json::from_str::<Line<10>>("\"x\\u0000y\"").unwrap_err();
        assert!(err.to_string().contains("control character U+0000"), "{err}");
    }

    #[test]
    fn the_schema_states_the_bound_and_names_each_bound_apart() {
        use utoipa::{PartialSchema, ToSchema};
        let schema = serde_json::to_value(Line::<200>::schema()).unwrap();
        assert_eq!(schema["maxLength"], 200);
        assert_eq!(Line::<200>::name(), "Line200");
        assert_eq!(Paragraph::<2000>::name(), "Paragraph2000");
    }
}
