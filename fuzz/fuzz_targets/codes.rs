//! The parsers of typed-in identifiers. Whatever parses must print back as it was typed; a number
//! the server makes must parse; and a single mistyped digit of it must not.
#![no_main]

use fieldcheck_server::{
    applications::number::InspectionNo,
    domain::{CustomsCode, DistrictCode, Uscc},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let [flags, y0, y1, d0, d1, s0, s1, s2, s3, typo, ..] = *data {
        let district = format!("{:04}", u16::from_le_bytes([d0, d1]) % 10_000);
        let serial = u32::from_le_bytes([s0, s1, s2, s3]) % 10_000_000;
        let made = InspectionNo::new(flags & 1 == 1, i16::from_le_bytes([y0, y1]), &district, serial);
        let parsed = InspectionNo::parse(made.as_str(), |d| d == district).expect("a made number parses");
        assert_eq!(parsed.as_str(), made.as_str());
        // The Damm check digit catches every single-digit error.
        let mut mistyped = made.as_str().as_bytes().to_vec();
        let at = usize::from(typo) % 15;
        let wrong = b'0' + (mistyped[at] - b'0' + 1 + flags % 9) % 10;
        mistyped[at] = wrong;
        let mistyped = String::from_utf8(mistyped).expect("digits");
        assert!(InspectionNo::parse(&mistyped, |_| true).is_err(), "{mistyped} passed for {made:?}");
    }
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(code) = CustomsCode::parse(s) {
        assert_eq!(code.as_str(), s);
    }
    if let Ok(code) = DistrictCode::parse(s) {
        assert_eq!(code.as_str(), s);
    }
    if let Ok(code) = Uscc::parse(s) {
        assert_eq!(code.as_str(), s);
    }
    if let Ok(number) = InspectionNo::parse(s, |_| true) {
        assert_eq!(number.as_str(), s);
    }
});
