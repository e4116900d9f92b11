//! What a photo file is, decided from its bytes alone: the format by its signature (never by a name or a
//! header the client chose), whether it decodes within the limits, and what its EXIF block says.
//!
//! Everything here is blocking, CPU-bound work for `spawn_blocking`. Nothing here trusts the file: sizes are
//! checked against the limits before pixels are allocated, and EXIF values are range-checked before use.

use std::io::Cursor;

use image::{DynamicImage, ImageError, ImageFormat, ImageReader, Limits};

use crate::config::PhotoSettings;
pub use fieldcheck_sync::exif::ExifFacts;

/// The formats a photo may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhotoFormat {
    Jpeg,
    Png,
    Webp,
}

impl PhotoFormat {
    pub const ALL: [PhotoFormat; 3] = [PhotoFormat::Jpeg, PhotoFormat::Png, PhotoFormat::Webp];

    pub fn as_str(self) -> &'static str {
        match self {
            PhotoFormat::Jpeg => "jpeg",
            PhotoFormat::Png => "png",
            PhotoFormat::Webp => "webp",
        }
    }

    pub fn parse(s: &str) -> Option<PhotoFormat> {
        PhotoFormat::ALL.into_iter().find(|f| f.as_str() == s)
    }

    pub fn content_type(self) -> &'static str {
        match self {
            PhotoFormat::Jpeg => "image/jpeg",
            PhotoFormat::Png => "image/png",
            PhotoFormat::Webp => "image/webp",
        }
    }

    pub fn from_content_type(s: &str) -> Option<PhotoFormat> {
        PhotoFormat::ALL.into_iter().find(|f| f.content_type() == s)
    }

    fn image_format(self) -> ImageFormat {
        match self {
            PhotoFormat::Jpeg => ImageFormat::Jpeg,
            PhotoFormat::Png => ImageFormat::Png,
            PhotoFormat::Webp => ImageFormat::WebP,
        }
    }
}

/// A photo that passed inspection, with its decoded pixels (for the thumbnail).
pub struct Inspected {
    pub format: PhotoFormat,
    pub width: u32,
    pub height: u32,
    pub exif: ExifFacts,
    pub image: DynamicImage,
}

/// Why a file is not accepted as a photo. Each variant becomes a 4xx with this sentence.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("the file is empty")]
    Empty,
    #[error("the file is not a JPEG, PNG or WebP image (its first bytes match no photo format)")]
    NotAPhoto,
    #[error("{0} images are not accepted; send JPEG, PNG or WebP")]
    UnsupportedFormat(String),
    #[error("the file is {actual} but was sent as {declared}")]
    ContentTypeMismatch { declared: String, actual: &'static str },
    #[error("the image is {width}×{height} pixels; at most {max} on either side is accepted")]
    DimensionsTooLarge { width: u32, height: u32, max: u32 },
    #[error(
        "decoding the image would need about {needed} bytes of memory, more than the {max} allowed (a decompression bomb?)"
    )]
    DecompressionBomb { needed: u64, max: u64 },
    #[error("decoding the image went over the memory or size limits: {0}")]
    OverLimits(String),
    #[error("the file ends before the image does (truncated upload or damaged file)")]
    Truncated,
    #[error("the image data is damaged and cannot be decoded: {0}")]
    Corrupt(String),
    #[error("the EXIF block is damaged and cannot be read ({0}); export the photo again or without EXIF")]
    MalformedExif(String),
}

impl Refusal {
    /// The stable machine-readable code of the API error.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Empty => "empty_photo",
            Refusal::NotAPhoto => "not_a_photo",
            Refusal::UnsupportedFormat(_) => "unsupported_photo_format",
            Refusal::ContentTypeMismatch { .. } => "content_type_mismatch",
            Refusal::DimensionsTooLarge { .. } => "photo_dimensions_too_large",
            Refusal::DecompressionBomb { .. } => "decompression_bomb",
            Refusal::OverLimits(_) => "decompression_bomb",
            Refusal::Truncated => "truncated_photo",
            Refusal::Corrupt(_) => "corrupt_photo",
            Refusal::MalformedExif(_) => "malformed_exif",
        }
    }

    /// Format problems are 415 (send something else); damage and limits are 422 (this file will not do).
    pub fn is_media_type(&self) -> bool {
        matches!(
            self,
            Refusal::NotAPhoto | Refusal::UnsupportedFormat(_) | Refusal::ContentTypeMismatch { .. }
        )
    }
}

/// The format by its signature; `Err` says what it is instead, when that is known.
pub fn sniff(bytes: &[u8]) -> Result<PhotoFormat, Refusal> {
    if bytes.is_empty() {
        return Err(Refusal::Empty);
    }
    match image::guess_format(bytes) {
        Ok(ImageFormat::Jpeg) => Ok(PhotoFormat::Jpeg),
        Ok(ImageFormat::Png) => Ok(PhotoFormat::Png),
        Ok(ImageFormat::WebP) => Ok(PhotoFormat::Webp),
        Ok(other) => Err(Refusal::UnsupportedFormat(format!("{other:?}").to_uppercase())),
        Err(_) => Err(Refusal::NotAPhoto),
    }
}

/// The format by its signature, refused when the client declared another one (`declared` is the content
/// type the client sent, if it named an image type).
pub fn sniff_as_declared(bytes: &[u8], declared: Option<PhotoFormat>) -> Result<PhotoFormat, Refusal> {
    let format = sniff(bytes)?;
    if let Some(declared) = declared
        && declared != format
    {
        return Err(Refusal::ContentTypeMismatch {
            declared: declared.content_type().into(),
            actual: format.content_type(),
        });
    }
    Ok(format)
}

/// Checks a photo completely: format (as declared), size, structure, pixels, EXIF.
pub fn inspect(
    bytes: &[u8],
    declared: Option<PhotoFormat>,
    limits: &PhotoSettings,
) -> Result<Inspected, Refusal> {
    let format = sniff_as_declared(bytes, declared)?;
    // The header alone is read without limits (it allocates no pixels) so that a refusal can name the size.
    let mut header = ImageReader::with_format(Cursor::new(bytes), format.image_format());
    header.no_limits();
    let (width, height) = header.into_dimensions().map_err(refusal)?;
    if width > limits.max_dimension || height > limits.max_dimension {
        return Err(Refusal::DimensionsTooLarge { width, height, max: limits.max_dimension });
    }
    // Four bytes a pixel covers every decoded layout we accept but 16-bit PNG, which the decoder's own
    // allocation limit still catches below.
    let needed = u64::from(width) * u64::from(height) * 4;
    if needed > limits.max_decoded_bytes {
        return Err(Refusal::DecompressionBomb { needed, max: limits.max_decoded_bytes });
    }
    // The JPEG decoder fills a truncated scan with grey rather than failing; evidence must be whole.
    if format == PhotoFormat::Jpeg && !jpeg_has_end(bytes) {
        return Err(Refusal::Truncated);
    }
    let image = match format {
        PhotoFormat::Jpeg => decode_jpeg_strictly(bytes, limits)?,
        _ => reader(bytes, format, limits).decode().map_err(refusal)?,
    };
    let exif = read_exif(bytes)?;
    Ok(Inspected { format, width, height, exif, image })
}

fn reader<'a>(
    bytes: &'a [u8],
    format: PhotoFormat,
    settings: &PhotoSettings,
) -> ImageReader<Cursor<&'a [u8]>> {
    let mut limits = Limits::default();
    limits.max_image_width = Some(settings.max_dimension);
    limits.max_image_height = Some(settings.max_dimension);
    limits.max_alloc = Some(settings.max_decoded_bytes);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
    reader.limits(limits);
    reader
}

/// JPEGs are decoded by zune-jpeg in strict mode. Through `image` it runs leniently, as browsers do: a
/// damaged Huffman stream or a scan cut short is painted grey and passes as a photo. Evidence with a grey
/// band where the damage was must be refused, not shown.
fn decode_jpeg_strictly(bytes: &[u8], limits: &PhotoSettings) -> Result<DynamicImage, Refusal> {
    let max = limits.max_dimension as usize;
    let options = zune_core::options::DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(max)
        .set_max_height(max)
        .jpeg_set_out_colorspace(zune_core::colorspace::ColorSpace::RGB);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(Cursor::new(bytes), options);
    let pixels = decoder.decode().map_err(|e| {
        let text = e.to_string();
        if text.contains("Premature end") || text.to_ascii_lowercase().contains("eof") {
            Refusal::Truncated
        } else {
            Refusal::Corrupt(text)
        }
    })?;
    let (w, h) =
        decoder.dimensions().ok_or_else(|| Refusal::Corrupt("no image size after decoding".into()))?;
    let (w, h) = (u32::try_from(w).unwrap_or(u32::MAX), u32::try_from(h).unwrap_or(u32::MAX));
    image::RgbImage::from_raw(w, h, pixels)
        .map(DynamicImage::ImageRgb8)
        .ok_or_else(|| Refusal::Corrupt("the decoded pixels do not fill the declared size".into()))
}

fn refusal(e: ImageError) -> Refusal {
    match e {
        // The header checks in `inspect` catch the usual bombs; this is a decoder finding out while decoding.
        ImageError::Limits(l) => Refusal::OverLimits(l.to_string()),
        ImageError::Unsupported(u) => Refusal::Corrupt(format!("unsupported feature: {u}")),
        ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => Refusal::Truncated,
        other => {
            let text = other.to_string();
            if text.to_ascii_lowercase().contains("eof") || text.contains("end of file") {
                Refusal::Truncated
            } else {
                Refusal::Corrupt(text)
            }
        }
    }
}

/// Does the JPEG's last scan end with an end-of-image marker? Inside entropy-coded data every 0xFF byte is
/// followed by 0x00 or a restart marker, so `FF D9` after the last start-of-scan can only be the real end;
/// data some cameras append after it does not matter.
fn jpeg_has_end(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_scan {
        Some(at) => bytes[at..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => false,
    }
}

/// Reads the EXIF block ([`fieldcheck_sync::exif::read`], shared with the handheld); a block that cannot be
/// read at all is refused.
pub fn read_exif(bytes: &[u8]) -> Result<ExifFacts, Refusal> {
    fieldcheck_sync::exif::read(bytes).map_err(|e| Refusal::MalformedExif(e.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jpeg_without_its_end_marker_counts_as_truncated() {
        let whole = [0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF, 0x00, 0xFF, 0xD9];
        assert!(jpeg_has_end(&whole));
        assert!(!jpeg_has_end(&whole[..whole.len() - 2]));
    }

    #[test]
    fn text_files_and_gifs_are_not_photos() {
        assert_eq!(sniff(b"hello, world").unwrap_err(), Refusal::NotAPhoto);
        assert_eq!(sniff(b"GIF89a\x01\x00\x01\x00").unwrap_err().code(), "unsupported_photo_format");
        assert_eq!(sniff(b"").unwrap_err(), Refusal::Empty);
    }

    #[test]
    fn a_declared_type_that_disagrees_with_the_bytes_is_refused() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        let err = inspect(png, Some(PhotoFormat::Jpeg), &PhotoSettings::default()).err().unwrap();
        assert_eq!(err.code(), "content_type_mismatch");
    }
}
