//! The printed certificate: A4, every label in Chinese and English, the verification QR code top right.

use super::CertificateContent;
use crate::print::{
    DocInfo, PrintError,
    layout::{Flow, Letterhead},
};

/// What the printout says beyond the signed content.
pub struct PrintFacts<'a> {
    pub digest: &'a str,
    /// The verification URL the QR code encodes (it carries the digest).
    pub verify_url: &'a str,
    /// Which print this is: "copy N".
    pub copy: i64,
}

/// Renders the certificate as a PDF.
pub fn pdf(content: &CertificateContent, facts: &PrintFacts<'_>) -> Result<Vec<u8>, PrintError> {
    let copy = format!("第 {} 份 copy {}", facts.copy, facts.copy);
    let mut f = Flow::new(&Letterhead {
        title_zh: &content.title_zh,
        title_en: &content.title_en,
        number: &content.number,
        note: Some(&copy),
        verify_url: facts.verify_url,
    })?;

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

    let title = format!("{} {} {}", content.title_en, content.title_zh, content.number);
    f.render(&DocInfo { title: &title, subject: "fieldcheck certificate" })
}
