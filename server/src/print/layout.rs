//! The layout every printed paper shares (certificates, notices): the customs letterhead with the
//! verification QR code top right, labelled fields (Chinese and English label, wrapped value) flowing over
//! as many A4 pages as they need, section headings, and the number and page count at the foot of every
//! page.

use super::{A4_HEIGHT, A4_WIDTH, DocInfo, Page, PrintError, typeface};

const MARGIN: f32 = 50.0;
const LABEL_WIDTH: f32 = 150.0;
const QR_SIDE: f32 = 130.0;
const BODY: f32 = 9.5;
const LEADING: f32 = 13.5;
const BOTTOM: f32 = A4_HEIGHT - 60.0;

/// The top of a paper's first page.
pub struct Letterhead<'a> {
    pub title_zh: &'a str,
    pub title_en: &'a str,
    /// Printed as "编号 No.: …" and at the foot of every page.
    pub number: &'a str,
    /// A line under the number, e.g. which copy this is.
    pub note: Option<&'a str>,
    /// What the QR code encodes: the public verification URL.
    pub verify_url: &'a str,
}

/// Pages laid out top to bottom; a new page starts when the current one is full.
pub struct Flow {
    pages: Vec<Page>,
    y: f32,
    number: String,
}

impl Flow {
    /// A first page with the letterhead; fields follow below it.
    pub fn new(head: &Letterhead<'_>) -> Result<Flow, PrintError> {
        let mut first = Page::new();
        first.qr(A4_WIDTH - MARGIN - QR_SIDE, MARGIN - 10.0, QR_SIDE, head.verify_url)?;
        first.text(MARGIN, MARGIN + 10.0, 10.0, "中华人民共和国海关")?;
        first.text(MARGIN, MARGIN + 24.0, 8.5, "CUSTOMS OF THE PEOPLE'S REPUBLIC OF CHINA")?;
        first.text(MARGIN, MARGIN + 56.0, 22.0, head.title_zh)?;
        first.text(MARGIN, MARGIN + 76.0, 14.0, head.title_en)?;
        first.text(MARGIN, MARGIN + 98.0, 10.0, &format!("编号 No.: {}", head.number))?;
        if let Some(note) = head.note {
            first.text(MARGIN, MARGIN + 113.0, 9.0, note)?;
        }
        first.rule(MARGIN, MARGIN + 126.0, A4_WIDTH - MARGIN, MARGIN + 126.0, 0.8);
        Ok(Flow { pages: vec![first], y: MARGIN + 145.0, number: head.number.to_owned() })
    }

    fn page(&mut self) -> &mut Page {
        self.pages.last_mut().expect("a flow always has a page")
    }

    fn room(&mut self, height: f32) {
        if self.y + height > BOTTOM {
            self.pages.push(Page::new());
            self.y = MARGIN + 10.0;
        }
    }

    /// A label (Chinese / English) and its value, wrapped beside it.
    pub fn field(&mut self, zh: &str, en: &str, value: &str) -> Result<(), PrintError> {
        let width = A4_WIDTH - 2.0 * MARGIN - LABEL_WIDTH;
        let lines = typeface().wrap(value, BODY, width).len().max(1) as f32;
        self.room(lines * LEADING + 4.0);
        let y = self.y;
        self.page().text(MARGIN, y, BODY, &format!("{zh} {en}"))?;
        let end = self.page().wrapped(MARGIN + LABEL_WIDTH, y, width, BODY, LEADING, value)?;
        self.y = end.max(y + LEADING) + 3.0;
        Ok(())
    }

    /// A section title with a rule under it.
    pub fn heading(&mut self, text: &str) -> Result<(), PrintError> {
        self.room(3.0 * LEADING);
        self.y += 6.0;
        let y = self.y;
        self.page().text(MARGIN, y, 11.0, text)?;
        self.page().rule(MARGIN, y + 4.0, A4_WIDTH - MARGIN, y + 4.0, 0.4);
        self.y += LEADING + 4.0;
        Ok(())
    }

    /// Numbers the pages at their foot and renders the PDF.
    pub fn render(mut self, info: &DocInfo<'_>) -> Result<Vec<u8>, PrintError> {
        let pages = self.pages.len();
        for (i, page) in self.pages.iter_mut().enumerate() {
            page.text(
                MARGIN,
                A4_HEIGHT - 35.0,
                8.0,
                &format!("{}  第 {} 页 / page {} of {}", self.number, i + 1, i + 1, pages),
            )?;
        }
        super::render(&self.pages, info)
    }
}
