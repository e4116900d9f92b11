//! What a photo's EXIF block says, read the same way by the server (photo evidence) and the handheld
//! (capture time and position on `attach`). Nothing here trusts the file: every value is range-checked and
//! left out when it makes no sense.

use std::io::Cursor;

use exif::{In, Tag, Value};

/// What the EXIF block told, each value only if it was present and made sense.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExifFacts {
    /// EXIF orientation 1–8: how to turn the stored pixels to show them upright.
    pub orientation: Option<u8>,
    /// `DateTimeOriginal` as `YYYY-MM-DDTHH:MM:SS`, the camera's local time; with `±HH:MM` appended only when
    /// `OffsetTimeOriginal` gives the zone (cameras rarely do, and guessing one would falsify evidence).
    pub captured_at: Option<String>,
    /// Decimal degrees, south and west negative. Both or neither.
    pub position: Option<(f64, f64)>,
    pub make: Option<String>,
    pub model: Option<String>,
}

/// An EXIF block that could not be read at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the EXIF block cannot be read: {0}")]
pub struct MalformedExif(pub String);

/// Reads a photo's EXIF block. No block is fine (many PNG and WebP files have none); a block that cannot be read
/// at all is refused; a block with some broken fields gives what is readable.
pub fn read(bytes: &[u8]) -> Result<ExifFacts, MalformedExif> {
    let mut reader = exif::Reader::new();
    reader.continue_on_error(true);
    let exif = match reader.read_from_container(&mut Cursor::new(bytes)) {
        Ok(exif) => exif,
        Err(exif::Error::NotFound(_)) => return Ok(ExifFacts::default()),
        Err(exif::Error::PartialResult(partial)) => partial.into_inner().0,
        Err(e) => return Err(MalformedExif(e.to_string())),
    };
    let orientation = exif
        .get_field(Tag::Orientation, In::PRIMARY)
        .and_then(|f| f.value.get_uint(0))
        .and_then(|o| u8::try_from(o).ok())
        .filter(|o| (1..=8).contains(o));
    Ok(ExifFacts {
        orientation,
        captured_at: captured_at(&exif),
        position: position(&exif),
        make: text(&exif, Tag::Make),
        model: text(&exif, Tag::Model),
    })
}

fn ascii(exif: &exif::Exif, tag: Tag) -> Option<&[u8]> {
    match &exif.get_field(tag, In::PRIMARY)?.value {
        Value::Ascii(v) => v.first().map(Vec::as_slice),
        _ => None,
    }
}

/// A printable, trimmed, bounded string; camera firmware pads with NULs and spaces.
fn text(exif: &exif::Exif, tag: Tag) -> Option<String> {
    let raw = ascii(exif, tag)?;
    let s: String = String::from_utf8_lossy(raw)
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect::<String>()
        .trim()
        .to_string();
    (!s.is_empty()).then_some(s)
}

fn captured_at(exif: &exif::Exif) -> Option<String> {
    let raw = ascii(exif, Tag::DateTimeOriginal).or_else(|| ascii(exif, Tag::DateTime))?;
    let mut dt = exif::DateTime::from_ascii(raw).ok()?;
    let valid = (1..=12).contains(&dt.month)
        && (1..=31).contains(&dt.day)
        && dt.hour < 24
        && dt.minute < 60
        && dt.second <= 60
        && dt.year >= 1900;
    if !valid {
        return None;
    }
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second
    );
    if let Some(offset) = ascii(exif, Tag::OffsetTimeOriginal)
        && dt.parse_offset(offset).is_ok()
        && let Some(minutes) = dt.offset.filter(|m| m.abs() <= 14 * 60)
    {
        let sign = if minutes < 0 { '-' } else { '+' };
        out.push_str(&format!("{sign}{:02}:{:02}", minutes.abs() / 60, minutes.abs() % 60));
    }
    Some(out)
}

fn position(exif: &exif::Exif) -> Option<(f64, f64)> {
    let lat = coordinate(exif, Tag::GPSLatitude, Tag::GPSLatitudeRef, b'N', b'S', 90.0)?;
    let lon = coordinate(exif, Tag::GPSLongitude, Tag::GPSLongitudeRef, b'E', b'W', 180.0)?;
    Some((lat, lon))
}

/// Degrees, minutes, seconds (three rationals) and a hemisphere letter → signed decimal degrees. A missing
/// hemisphere gives no coordinate: a position on the wrong side of the globe is worse than none.
fn coordinate(
    exif: &exif::Exif,
    tag: Tag,
    ref_tag: Tag,
    positive: u8,
    negative: u8,
    max: f64,
) -> Option<f64> {
    let sign = match ascii(exif, ref_tag)?.first()?.to_ascii_uppercase() {
        c if c == positive => 1.0,
        c if c == negative => -1.0,
        _ => return None,
    };
    let Value::Rational(parts) = &exif.get_field(tag, In::PRIMARY)?.value else { return None };
    let mut degrees = 0.0;
    for (part, scale) in parts.iter().zip([1.0, 60.0, 3600.0]) {
        if part.denom == 0 {
            return None;
        }
        degrees += part.to_f64() / scale;
    }
    (parts.len() <= 3 && !parts.is_empty() && degrees.is_finite() && degrees <= max).then_some(sign * degrees)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exif_with(fields: &[exif::Field]) -> exif::Exif {
        let mut writer = exif::experimental::Writer::new();
        for f in fields {
            writer.push_field(f);
        }
        let mut tiff = Cursor::new(Vec::new());
        writer.write(&mut tiff, false).unwrap();
        exif::Reader::new().read_raw(tiff.into_inner()).unwrap()
    }

    fn field(tag: Tag, value: Value) -> exif::Field {
        exif::Field { tag, ifd_num: In::PRIMARY, value }
    }

    fn dms(d: u32, m: u32, s_hundredths: u32) -> Value {
        let r = |num, denom| exif::Rational { num, denom };
        Value::Rational(vec![r(d, 1), r(m, 1), r(s_hundredths, 100)])
    }

    #[test]
    fn south_and_west_give_negative_degrees_and_a_missing_hemisphere_gives_no_position() {
        let ascii = |s: &str| Value::Ascii(vec![s.as_bytes().to_vec()]);
        let sydney = exif_with(&[
            field(Tag::GPSLatitudeRef, ascii("S")),
            field(Tag::GPSLatitude, dms(33, 51, 3600)),
            field(Tag::GPSLongitudeRef, ascii("W")),
            field(Tag::GPSLongitude, dms(151, 12, 0)),
        ]);
        let (lat, lon) = position(&sydney).unwrap();
        assert!((lat + 33.86).abs() < 1e-9 && (lon + 151.2).abs() < 1e-9, "{lat} {lon}");
        let no_ref = exif_with(&[
            field(Tag::GPSLatitude, dms(33, 51, 3600)),
            field(Tag::GPSLongitudeRef, ascii("E")),
            field(Tag::GPSLongitude, dms(151, 12, 0)),
        ]);
        assert_eq!(position(&no_ref), None);
        let zero_denominator = exif_with(&[
            field(Tag::GPSLatitudeRef, ascii("N")),
            field(Tag::GPSLatitude, Value::Rational(vec![exif::Rational { num: 1, denom: 0 }])),
            field(Tag::GPSLongitudeRef, ascii("E")),
            field(Tag::GPSLongitude, dms(151, 12, 0)),
        ]);
        assert_eq!(position(&zero_denominator), None);
    }

    #[test]
    fn a_capture_time_with_an_offset_keeps_it_and_a_nonsense_date_is_dropped() {
        let ascii = |s: &str| Value::Ascii(vec![s.as_bytes().to_vec()]);
        let with_offset = exif_with(&[
            field(Tag::DateTimeOriginal, ascii("2026:11:23 09:30:00")),
            field(Tag::OffsetTimeOriginal, ascii("+08:00")),
        ]);
        assert_eq!(captured_at(&with_offset).as_deref(), Some("2026-11-23T09:30:00+08:00"));
        let nonsense = exif_with(&[field(Tag::DateTimeOriginal, ascii("2026:13:45 99:30:00"))]);
        assert_eq!(captured_at(&nonsense), None);
    }
}
