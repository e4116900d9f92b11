//! Thumbnails: small, upright JPEGs for lists and dashboards. Blocking work, for `spawn_blocking`.

use std::io::Cursor;

use image::{DynamicImage, codecs::jpeg::JpegEncoder, metadata::Orientation};

/// JPEG quality of thumbnails: small files, no visible blocking at 320 px.
const QUALITY: u8 = 80;

/// Scales `image` so its long edge is at most `edge` (never enlarging), turns it upright as the EXIF
/// `orientation` says, and encodes it as JPEG.
pub fn make(image: &DynamicImage, orientation: Option<u8>, edge: u32) -> Result<Vec<u8>, image::ImageError> {
    let mut small =
        if image.width().max(image.height()) > edge { image.thumbnail(edge, edge) } else { image.clone() };
    // Scaling first, rotating second: turning 320 px is cheaper than turning 12 megapixels.
    if let Some(o) = orientation.and_then(Orientation::from_exif) {
        small.apply_orientation(o);
    }
    let rgb = DynamicImage::ImageRgb8(small.to_rgb8());
    let mut out = Cursor::new(Vec::new());
    rgb.write_with_encoder(JpegEncoder::new_with_quality(&mut out, QUALITY))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> DynamicImage {
        image::load_from_memory(bytes).unwrap()
    }

    #[test]
    fn the_long_edge_is_scaled_to_the_thumbnail_size_and_orientation_six_turns_it_upright() {
        let wide = DynamicImage::new_rgb8(1000, 500);
        let thumb = decode(&make(&wide, Some(6), 320).unwrap());
        assert_eq!((thumb.width(), thumb.height()), (160, 320));
    }

    #[test]
    fn small_images_are_not_enlarged() {
        let tiny = DynamicImage::new_rgb8(100, 68);
        let thumb = decode(&make(&tiny, None, 320).unwrap());
        assert_eq!((thumb.width(), thumb.height()), (100, 68));
    }
}
