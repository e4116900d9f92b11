//! Printed documents: A4 PDFs with Chinese and English text and vector QR codes.
//!
//! # Layout
//! - this file: the [`Page`] display list (text, wrapped text, rules, QR codes) and [`render`], which turns
//!   pages into one PDF. Callers place marks in points from the top-left corner; nothing here knows what a
//!   certificate is, so printed notices (issue 18) use the same few calls.
//! - [`layout`]: the shared paper layout — letterhead with the verification QR code, labelled bilingual
//!   fields flowing over pages, headings, numbered page feet — used by certificates and notices alike.
//! - [`typeface`]: the one embedded CJK font, its advance widths (for line breaking, which krilla does not
//!   do) and the check that a text can be printed at all.
//!
//! The font is compiled into the binary: a certificate must print the same on every machine, whatever
//! fonts the host has. krilla embeds only the glyphs a document uses (a few kB per page).

pub mod layout;
pub mod typeface;

use krilla::{
    Document,
    geom::{PathBuilder, Point, Rect},
    metadata::Metadata,
    page::PageSettings,
    paint::{Fill, Stroke},
    text::TextDirection,
};
use qrcode::{Color, EcLevel, QrCode};

pub use typeface::{Typeface, typeface};

/// A4 in PDF points (1/72 inch).
pub const A4_WIDTH: f32 = 595.28;
pub const A4_HEIGHT: f32 = 841.89;

#[derive(Debug, thiserror::Error)]
pub enum PrintError {
    #[error("the QR code cannot hold {0} bytes")]
    QrTooLong(usize),
    #[error("the character {0:?} is not in the embedded font")]
    Unprintable(char),
    #[error("PDF writer: {0}")]
    Pdf(String),
}

#[derive(Debug, Clone)]
enum Mark {
    Text {
        x: f32,
        y: f32,
        size: f32,
        text: String,
    },
    Rule {
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
        width: f32,
    },
    /// Dark modules as rectangles, in page coordinates.
    Modules(Vec<(f32, f32, f32, f32)>),
}

/// One A4 page as a list of marks; build it, then [`render`] the pages.
#[derive(Debug, Clone, Default)]
pub struct Page {
    marks: Vec<Mark>,
}

impl Page {
    pub fn new() -> Page {
        Page::default()
    }

    /// One line of text whose baseline starts at (`x`, `y`). Refuses characters the font lacks, so a
    /// printout never shows a blank box where a name should be.
    pub fn text(&mut self, x: f32, y: f32, size: f32, text: &str) -> Result<(), PrintError> {
        typeface().covers(text).map_err(PrintError::Unprintable)?;
        self.marks.push(Mark::Text { x, y, size, text: text.to_owned() });
        Ok(())
    }

    /// Text broken into lines no wider than `width`, the first baseline at `y`, `leading` apart. Answers
    /// the baseline after the last line.
    pub fn wrapped(
        &mut self,
        x: f32,
        y: f32,
        width: f32,
        size: f32,
        leading: f32,
        text: &str,
    ) -> Result<f32, PrintError> {
        let mut y = y;
        for line in typeface().wrap(text, size, width) {
            self.text(x, y, size, &line)?;
            y += leading;
        }
        Ok(y)
    }

    /// A straight line (`width` points thick).
    pub fn rule(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, width: f32) {
        self.marks.push(Mark::Rule { x1, y1, x2, y2, width });
    }

    /// A QR code of `data` (error correction M), `side` points square including the 4-module quiet zone,
    /// its top-left corner at (`x`, `y`). Drawn as vector rectangles: sharp at any print resolution.
    pub fn qr(&mut self, x: f32, y: f32, side: f32, data: &str) -> Result<(), PrintError> {
        let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)
            .map_err(|_| PrintError::QrTooLong(data.len()))?;
        let n = code.width();
        let module = side / (n + 8) as f32;
        let colors = code.to_colors();
        let mut rects = Vec::new();
        // Horizontal runs of dark modules become one rectangle each: fewer path operations, and no hairline
        // seams between neighbouring modules in some renderers.
        for row in 0..n {
            let mut col = 0;
            while col < n {
                if colors[row * n + col] == Color::Dark {
                    let start = col;
                    while col < n && colors[row * n + col] == Color::Dark {
                        col += 1;
                    }
                    rects.push((
                        x + (start + 4) as f32 * module,
                        y + (row + 4) as f32 * module,
                        (col - start) as f32 * module,
                        module,
                    ));
                } else {
                    col += 1;
                }
            }
        }
        self.marks.push(Mark::Modules(rects));
        Ok(())
    }
}

/// Document information written into the PDF.
pub struct DocInfo<'a> {
    pub title: &'a str,
    pub subject: &'a str,
}

/// Renders `pages` as one A4 PDF with the embedded font subset.
pub fn render(pages: &[Page], info: &DocInfo<'_>) -> Result<Vec<u8>, PrintError> {
    let font = typeface().font();
    let mut document = Document::new();
    document.set_metadata(
        Metadata::new()
            .title(info.title.to_owned())
            .description(info.subject.to_owned())
            .creator("fieldcheck".to_owned()),
    );
    for p in pages {
        let settings = PageSettings::from_wh(A4_WIDTH, A4_HEIGHT).expect("A4 is a valid page size");
        let mut page = document.start_page_with(settings);
        let mut surface = page.surface();
        for mark in &p.marks {
            match mark {
                Mark::Text { x, y, size, text } => {
                    surface.set_fill(Some(Fill::default()));
                    surface.set_stroke(None);
                    surface.draw_text(
                        Point::from_xy(*x, *y),
                        font.clone(),
                        *size,
                        text,
                        false,
                        TextDirection::Auto,
                    );
                }
                Mark::Rule { x1, y1, x2, y2, width } => {
                    let mut pb = PathBuilder::new();
                    pb.move_to(*x1, *y1);
                    pb.line_to(*x2, *y2);
                    if let Some(path) = pb.finish() {
                        surface.set_fill(None);
                        surface.set_stroke(Some(Stroke { width: *width, ..Stroke::default() }));
                        surface.draw_path(&path);
                    }
                }
                Mark::Modules(rects) => {
                    let mut pb = PathBuilder::new();
                    for (x, y, w, h) in rects {
                        if let Some(r) = Rect::from_xywh(*x, *y, *w, *h) {
                            pb.push_rect(r);
                        }
                    }
                    if let Some(path) = pb.finish() {
                        surface.set_stroke(None);
                        surface.set_fill(Some(Fill::default()));
                        surface.draw_path(&path);
                    }
                }
            }
        }
        surface.finish();
        page.finish();
    }
    document.finish().map_err(|e| PrintError::Pdf(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_with_chinese_text_and_a_qr_code_renders_as_a_pdf() {
        let mut page = Page::new();
        page.text(50.0, 80.0, 14.0, "卫生证书 Health Certificate").unwrap();
        page.rule(50.0, 90.0, 545.0, 90.0, 0.5);
        page.qr(400.0, 600.0, 120.0, "https://example.org/verify/220026SA000001?digest=00").unwrap();
        let pdf = render(&[page], &DocInfo { title: "t", subject: "s" }).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        // The subset holds a few glyphs, not the 2.9 MB font.
        assert!(pdf.len() < 100_000, "{} bytes", pdf.len());
    }

    #[test]
    fn text_the_font_cannot_show_is_refused_rather_than_printed_as_boxes() {
        let mut page = Page::new();
        let err = page.text(0.0, 0.0, 10.0, "emoji 🙂").unwrap_err();
        assert!(matches!(err, PrintError::Unprintable('🙂')), "{err}");
    }

    #[test]
    fn data_too_long_for_any_qr_code_is_an_error() {
        let mut page = Page::new();
        assert!(matches!(page.qr(0.0, 0.0, 100.0, &"x".repeat(5000)), Err(PrintError::QrTooLong(5000))));
    }
}
