//! The 15-digit inspection number (检验检疫编号).
//!
//! `D YY C DDDD SSSSSSS`: direction (1 import, 2 export), two-digit year, a check digit, the 4-digit customs
//! district, and a 7-digit serial within (direction, year, district). The check digit makes the whole
//! 15-digit number a valid Damm code word: the Damm algorithm catches every single mistyped digit and every
//! swap of two neighbours (check digit included), the two typos a person makes copying a number onto a
//! handheld. (ISO 7064 MOD 11-10 was tried first: it lets some neighbour swaps through.)

use std::fmt;

use serde::Serialize;

use crate::domain::CodeError;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(into = "String")]
#[schema(value_type = String, example = "2268220000001")]
pub struct InspectionNo(String);

/// Damm's totally anti-symmetric quasigroup of order 10.
const DAMM: [[u8; 10]; 10] = [
    [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
    [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
    [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
    [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
    [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
    [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
    [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
    [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
    [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
    [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

fn damm(digits: &[u8]) -> u8 {
    digits.iter().fold(0, |interim, d| DAMM[interim as usize][*d as usize])
}

/// The digit at position 4 that makes all 15 digits a Damm code word. Every step of the fold is a
/// permutation, so exactly one digit works.
fn check_digit(body: &[u8; 14]) -> u8 {
    (0..10u8)
        .find(|c| {
            let mut all = [0u8; 15];
            all[..3].copy_from_slice(&body[..3]);
            all[3] = *c;
            all[4..].copy_from_slice(&body[3..]);
            damm(&all) == 0
        })
        .expect("a Damm check digit always exists")
}

impl InspectionNo {
    pub fn new(import: bool, year: i16, district: &str, serial: u32) -> InspectionNo {
        let body =
            format!("{}{:02}{}{:07}", if import { 1 } else { 2 }, year.rem_euclid(100), district, serial);
        let mut digits = [0u8; 14];
        for (d, b) in digits.iter_mut().zip(body.bytes()) {
            *d = b - b'0';
        }
        let check = check_digit(&digits);
        InspectionNo(format!("{}{}{}", &body[..3], check, &body[3..]))
    }

    /// Parses and checks a number; `known_district` says whether digits 5–8 name one of our districts.
    pub fn parse(s: &str, known_district: impl Fn(&str) -> bool) -> Result<InspectionNo, CodeError> {
        if s.len() != 15 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CodeError(format!("inspection number `{s}` must be exactly 15 digits")));
        }
        let digits: Vec<u8> = s.bytes().map(|b| b - b'0').collect();
        if !matches!(digits[0], 1 | 2) {
            return Err(CodeError(format!(
                "inspection number `{s}` must start with 1 (import) or 2 (export)"
            )));
        }
        if damm(&digits) != 0 {
            let mut body = [0u8; 14];
            body[..3].copy_from_slice(&digits[..3]);
            body[3..].copy_from_slice(&digits[4..]);
            let expected = check_digit(&body);
            return Err(CodeError(format!(
                "inspection number `{s}` fails its check digit (the 4th digit would be {expected}): a digit was probably mistyped or two swapped"
            )));
        }
        let district = &s[4..8];
        if !known_district(district) {
            return Err(CodeError(format!(
                "inspection number `{s}` names district {district}, which is not ours"
            )));
        }
        Ok(InspectionNo(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<InspectionNo> for String {
    fn from(n: InspectionNo) -> String {
        n.0
    }
}

impl fmt::Display for InspectionNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(_: &str) -> bool {
        true
    }

    #[test]
    fn a_built_number_parses_back_and_has_the_documented_layout() {
        let n = InspectionNo::new(false, 2026, "2200", 42);
        assert_eq!(n.as_str().len(), 15);
        assert!(n.as_str().starts_with("226"));
        assert_eq!(&n.as_str()[4..8], "2200");
        assert_eq!(&n.as_str()[8..], "0000042");
        assert_eq!(InspectionNo::parse(n.as_str(), any).unwrap(), n);
    }

    #[test]
    fn every_single_digit_typo_is_caught() {
        let n = InspectionNo::new(true, 2026, "5300", 1234567);
        let s = n.as_str().as_bytes().to_vec();
        for i in 0..15 {
            for d in b'0'..=b'9' {
                if s[i] == d {
                    continue;
                }
                let mut t = s.clone();
                t[i] = d;
                let typo = String::from_utf8(t).unwrap();
                assert!(InspectionNo::parse(&typo, any).is_err(), "{typo} slipped through");
            }
        }
    }

    #[test]
    fn every_swap_of_neighbouring_digits_is_caught() {
        for serial in [1, 98_765, 1_234_567, 7_000_001] {
            let s = InspectionNo::new(false, 2026, "2201", serial).as_str().as_bytes().to_vec();
            for i in 0..14 {
                if s[i] == s[i + 1] {
                    continue;
                }
                let mut t = s.clone();
                t.swap(i, i + 1);
                let swapped = String::from_utf8(t).unwrap();
                assert!(InspectionNo::parse(&swapped, any).is_err(), "{swapped} slipped through");
            }
        }
    }

    #[test]
    fn bad_lengths_directions_and_unknown_districts_are_refused() {
        assert!(InspectionNo::parse("12345", any).unwrap_err().0.contains("15 digits"));
        assert!(InspectionNo::parse("22A622000000001", any).is_err());
        let n = InspectionNo::new(false, 2026, "2200", 1);
        let err = InspectionNo::parse(n.as_str(), |d| d == "5300").unwrap_err();
        assert!(err.0.contains("district 2200"), "{}", err.0);
        let mut three = n.as_str().to_string();
        three.replace_range(0..1, "3");
        assert!(InspectionNo::parse(&three, any).unwrap_err().0.contains("start with 1"));
    }
}
