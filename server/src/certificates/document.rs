//! The printed certificate: A4, every label in Chinese and English, the verification QR code top right.

use super::CertificateContent;
use crate::print::{self, A4_HEIGHT, A4_WIDTH, DocInfo, Page, PrintError};

const MARGIN: f32 = 50.0;
const LABEL_WIDTH: f32 = 150.0;
const QR_SIDE: f32 = 130.0;
const BODY: f32 = 9.5;
const LEADING: f32 = 13.5;
const BOTTOM: f32 = A4_HEIGHT - 60.0;

/// What the printout says beyond the signed content.
pub struct PrintFacts<'a> {
    pub digest: &'a str,
    /// The verification URL the QR code encodes (it carries the digest).
    pub verify_url: &'a str,
    /// Which print this is: "copy N".
    pub copy: i64,
}

/// Pages laid out top to bottom; a new page starts when the current one is full.
struct Flow {
    pages: Vec<Page>,
    y: f32,
}

impl Flow {
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
    fn field(&mut self, zh: &str, en: &str, value: &str) -> Result<(), PrintError> {
        let width = A4_WIDTH - 2.0 * MARGIN - LABEL_WIDTH;
        let lines = print::typeface().wrap(value, BODY, width).len().max(1) as f32;
        self.room(lines * LEADING + 4.0);
        let y = self.y;
        self.page().text(MARGIN, y, BODY, &format!("{zh} {en}"))?;
        let end = self.page().wrapped(MARGIN + LABEL_WIDTH, y, width, BODY, LEADING, value)?;
        self.y = end.max(y + LEADING) + 3.0;
        Ok(())
    }

    fn heading(&mut self, text: &str) -> Result<(), PrintError> {
        self.room(3.0 * LEADING);
        self.y += 6.0;
        let y = self.y;
        self.page().text(MARGIN, y, 11.0, text)?;
        self.page().rule(MARGIN, y + 4.0, A4_WIDTH - MARGIN, y + 4.0, 0.4);
        self.y += LEADING + 4.0;
        Ok(())
    }
}

/// Renders the certificate as a PDF.
pub fn pdf(content: &CertificateContent, facts: &PrintFacts<'_>) -> Result<Vec<u8>, PrintError> {
    let mut first = Page::new();
    first.qr(A4_WIDTH - MARGIN - QR_SIDE, MARGIN - 10.0, QR_SIDE, facts.verify_url)?;
    first.text(MARGIN, MARGIN + 10.0, 10.0, "中华人民共和国海关")?;
    first.text(MARGIN, MARGIN + 24.0, 8.5, "CUSTOMS OF THE PEOPLE'S REPUBLIC OF CHINA")?;
    first.text(MARGIN, MARGIN + 56.0, 22.0, &content.title_zh)?;
    first.text(MARGIN, MARGIN + 76.0, 14.0, &content.title_en)?;
    first.text(MARGIN, MARGIN + 98.0, 10.0, &format!("编号 No.: {}", content.number))?;
    first.text(MARGIN, MARGIN + 113.0, 9.0, &format!("第 {} 份 copy {}", facts.copy, facts.copy))?;
    first.rule(MARGIN, MARGIN + 126.0, A4_WIDTH - MARGIN, MARGIN + 126.0, 0.8);
    let mut f = Flow { pages: vec![first], y: MARGIN + 145.0 };

    let party = |p: &super::IssuedParty| match &p.address {
        Some(a) => format!("{}, {a}", p.name),
        None => p.name.clone(),
    };
    f.field("发货人", "Consignor", &party(&content.consignor))?;
    f.field("收货人", "Consignee", &party(&content.consignee))?;
    f.field("输出国家", "Country of export", &content.export_country)?;
    f.field("输入国家", "Country of destination", &content.destination_country)?;
    if let Some(t) = &content.transport {
        f.field("运输工具", "Means of transport", &format!("{} {:?}: {}", t.mode.zh(), t.mode, t.means))?;
        f.field("装货口岸", "Port of loading", &t.port_of_loading)?;
        if let Some(p) = &t.port_of_unloading {
            f.field("卸货口岸", "Port of unloading", p)?;
        }
    }

    f.heading("货物 Goods")?;
    for g in &content.goods {
        f.field(
            &format!("{}.", g.seq),
            &g.hs_code,
            &format!("{} {} ({})", g.description_zh, g.description_en, g.name),
        )?;
        let mut line = format!(
            "数量 Quantity: {} {}   净重 Net weight: {} kg   原产国 Origin: {}",
            g.quantity, g.unit, g.net_weight_kg, g.origin_country
        );
        if let Some(p) = &g.packages {
            line.push_str(&format!("   包装 Packages: {p}"));
        }
        f.field("", "", &line)?;
    }

    if !content.additional_declarations.is_empty() || content.treatment.is_some() {
        f.heading("附加声明与处理 Additional declarations and treatment")?;
        for d in &content.additional_declarations {
            f.field("附加声明", "Declaration", d)?;
        }
        if let Some(t) = &content.treatment {
            f.field("处理", "Treatment", t)?;
        }
    }
    if let Some(r) = &content.replaces {
        f.heading("替换 Replacement")?;
        f.field("替换证书", "Replaces", &format!("{} — {}", r.number, r.reason))?;
    }

    f.heading("签发与核验 Issue and verification")?;
    f.field("签发机构", "Issued by", &content.issuer.name)?;
    f.field("签发时间", "Issued at", &content.issued_at)?;
    f.field("检验检疫编号", "Inspection No.", &content.evidence.inspection_no)?;
    f.field("电子底账", "E-record", &content.evidence.e_record_no)?;
    if let Some(d) = &content.evidence.record_digest {
        f.field("查验记录摘要", "Record digest", d)?;
    }
    f.field("现场照片", "Photos", &format!("{} (SHA-256)", content.evidence.photo_hashes.len()))?;
    f.field("证书摘要", "Certificate digest", facts.digest)?;
    f.field("在线核验", "Verify online", facts.verify_url)?;

    let pages = f.pages.len();
    for (i, page) in f.pages.iter_mut().enumerate() {
        page.text(
            MARGIN,
            A4_HEIGHT - 35.0,
            8.0,
            &format!("{}  第 {} 页 / page {} of {}", content.number, i + 1, i + 1, pages),
        )?;
    }
    let title = format!("{} {} {}", content.title_en, content.title_zh, content.number);
    print::render(&f.pages, &DocInfo { title: &title, subject: "fieldcheck certificate" })
}
