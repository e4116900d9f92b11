//! The embedded font: Noto Sans CJK SC, subset to GB 2312 plus Latin (fixtures/fonts/README.md says how
//! and why), with its advance widths read once so text can be measured and wrapped.

use std::{collections::HashMap, sync::LazyLock};

use skrifa::{FontRef, MetadataProvider, instance::Size};

static FONT_BYTES: &[u8] = include_bytes!("../../../fixtures/fonts/NotoSansSC-Regular-GB2312.otf");

static TYPEFACE: LazyLock<Typeface> = LazyLock::new(Typeface::load);

/// The font every printed document uses.
pub fn typeface() -> &'static Typeface {
    &TYPEFACE
}

pub struct Typeface {
    font: krilla::text::Font,
    /// Advance width of each character the font maps, in ems.
    advances: HashMap<char, f32>,
}

impl Typeface {
    fn load() -> Typeface {
        let face = FontRef::new(FONT_BYTES).expect("the embedded font parses");
        let metrics = face.glyph_metrics(Size::new(1.0), skrifa::instance::LocationRef::default());
        let advances = face
            .charmap()
            .mappings()
            .filter_map(|(cp, glyph)| Some((char::from_u32(cp)?, metrics.advance_width(glyph)?)))
            .collect();
        let font =
            krilla::text::Font::new(FONT_BYTES.to_vec().into(), 0).expect("krilla reads the embedded font");
        Typeface { font, advances }
    }

    pub fn font(&self) -> krilla::text::Font {
        self.font.clone()
    }

    /// `Err(c)` names the first character of `text` the font cannot show. Line breaks and tabs count as
    /// unprintable: a single line is what the caller asked for.
    pub fn covers(&self, text: &str) -> Result<(), char> {
        match text.chars().find(|c| !self.advances.contains_key(c)) {
            Some(c) => Err(c),
            None => Ok(()),
        }
    }

    /// Width of `text` at `size` points, without kerning (close enough to break lines with a margin).
    pub fn width(&self, text: &str, size: f32) -> f32 {
        text.chars().map(|c| self.advances.get(&c).copied().unwrap_or(1.0)).sum::<f32>() * size
    }

    /// Breaks `text` into lines at most `width` wide: between words of Latin text, and between any two
    /// Chinese characters (CJK text has no spaces; krilla shapes but does not break). A word longer than
    /// the line is cut where it must be. Line breaks in `text` start a new line.
    pub fn wrap(&self, text: &str, size: f32, width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for paragraph in text.split('\n') {
            let mut line = String::new();
            let mut line_width = 0.0;
            // Byte offset in `line` after which the line may break, if it has one.
            let mut last_break: Option<usize> = None;
            for c in paragraph.chars() {
                let w = self.advances.get(&c).copied().unwrap_or(1.0) * size;
                if line_width + w > width && !line.is_empty() && c != ' ' {
                    let cut = last_break.filter(|&b| b > 0).unwrap_or(line.len());
                    let rest = line.split_off(cut);
                    lines.push(line.trim_end().to_owned());
                    line = rest.trim_start().to_owned();
                    line_width = self.width(&line, size);
                    last_break = None;
                }
                if is_cjk(c) && !line.is_empty() {
                    last_break = Some(line.len());
                }
                line.push(c);
                line_width += w;
                if c == ' ' || is_cjk(c) {
                    last_break = Some(line.len());
                }
            }
            lines.push(line.trim_end().to_owned());
        }
        lines
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c, '\u{3000}'..='\u{303F}' | '\u{3400}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}' | '\u{FF00}'..='\u{FFEF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_text_breaks_between_any_two_characters_and_fits_the_width() {
        let t = typeface();
        let text = "输往日本须附加声明货物适合人类食用且不带检疫性有害生物";
        let lines = t.wrap(text, 10.0, 100.0);
        assert!(lines.len() > 1, "{lines:?}");
        assert_eq!(lines.concat(), text, "no character lost or added");
        assert!(lines.iter().all(|l| t.width(l, 10.0) <= 100.0), "{lines:?}");
    }

    #[test]
    fn latin_text_breaks_between_words() {
        let t = typeface();
        let lines = t.wrap("The goods are fit for human consumption and free from pests", 10.0, 120.0);
        assert!(lines.len() > 1, "{lines:?}");
        assert!(lines.iter().all(|l| !l.starts_with(' ') && !l.ends_with(' ')), "{lines:?}");
        assert_eq!(lines.join(" "), "The goods are fit for human consumption and free from pests");
        assert!(lines.iter().all(|l| t.width(l, 10.0) <= 120.0), "{lines:?}");
    }

    #[test]
    fn a_word_longer_than_the_line_is_cut() {
        let t = typeface();
        let lines = t.wrap(&"x".repeat(200), 10.0, 50.0);
        assert!(lines.len() > 1);
        assert_eq!(lines.concat(), "x".repeat(200));
    }

    #[test]
    fn the_font_covers_gb2312_chinese_latin_and_punctuation() {
        let t = typeface();
        assert_eq!(t.covers("植物检疫证书 Phytosanitary Certificate, No. 1: 大麻哈鱼（冷冻）"), Ok(()));
        assert_eq!(t.covers("𠀀"), Err('𠀀'));
    }
}
