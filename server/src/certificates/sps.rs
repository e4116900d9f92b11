//! The UN/CEFACT SPS certificate message (the shape of the IPPC ePhyto hub's), and the outbox that delivers
//! it.
//!
//! The message is written with quick-xml's event writer and fixed namespace prefixes (`rsm`, `ram`,
//! `udt`): its serde support does not handle namespaces well, and receivers compare prefixes less often
//! than they should. Every issue, revocation and replacement puts a row in `sps_outbox` in the same
//! transaction as the change; [`deliver`] hands pending rows to the [`SpsSender`] after the commit and
//! records `delivered` or `failed` (retried on the next wake-up, up to [`MAX_ATTEMPTS`]).

use std::io::Cursor;

use super::{
    CertificateContent,
    outbox::{self, Envelope},
    store,
};
use crate::{domain::time::rfc3339, error::ApiError, state::AppState};
use quick_xml::{
    Writer,
    events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event},
};

pub const NS_RSM: &str = "urn:un:unece:uncefact:data:standard:SPSCertificate:17";
pub const NS_RAM: &str = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21";
pub const NS_UDT: &str = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:21";

/// Delivery attempts before an entry stays `failed` for an operator to look at.
pub const MAX_ATTEMPTS: i64 = 5;

/// The SPS status code a message carries (UN/CEFACT 1373: 70 issued, 39 withdrawn/revoked, 40 replaced).
fn status_code(status: &str) -> &'static str {
    match status {
        "revoked" => "39",
        "replaced" => "40",
        _ => "70",
    }
}

struct Xml {
    w: Writer<Cursor<Vec<u8>>>,
}

impl Xml {
    fn open(&mut self, name: &str) {
        self.event(Event::Start(BytesStart::new(name)));
    }

    fn close(&mut self, name: &str) {
        self.event(Event::End(BytesEnd::new(name)));
    }

    fn text(&mut self, name: &str, value: &str) {
        self.open(name);
        self.event(Event::Text(BytesText::new(value)));
        self.close(name);
    }

    fn text_attr(&mut self, name: &str, attr: (&str, &str), value: &str) {
        let mut start = BytesStart::new(name);
        start.push_attribute(attr);
        self.event(Event::Start(start));
        self.event(Event::Text(BytesText::new(value)));
        self.close(name);
    }

    fn event(&mut self, e: Event<'_>) {
        // Writing into a Vec cannot fail.
        self.w.write_event(e).expect("writing XML into memory");
    }
}

/// The certificate as an `rsm:SPSCertificate` message. `status` is the certificate's status now.
pub fn message(content: &CertificateContent, status: &str, status_at: Option<i64>) -> Vec<u8> {
    let mut x = Xml { w: Writer::new_with_indent(Cursor::new(Vec::new()), b' ', 2) };
    x.event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let mut root = BytesStart::new("rsm:SPSCertificate");
    root.push_attribute(("xmlns:rsm", NS_RSM));
    root.push_attribute(("xmlns:ram", NS_RAM));
    root.push_attribute(("xmlns:udt", NS_UDT));
    x.event(Event::Start(root));

    x.open("rsm:SPSExchangedDocument");
    x.text("ram:Name", &content.title_en);
    x.text("ram:ID", &content.number);
    x.text("ram:TypeCode", type_code(content));
    x.text("ram:StatusCode", status_code(status));
    x.open("ram:IssueDateTime");
    x.text("udt:DateTimeString", &content.issued_at);
    x.close("ram:IssueDateTime");
    x.open("ram:IssuerSPSParty");
    x.text("ram:Name", &content.issuer.name);
    x.close("ram:IssuerSPSParty");
    if let Some(r) = &content.replaces {
        x.open("ram:IncludedSPSNote");
        x.text("ram:Subject", "REPLACEMENT");
        x.text("ram:Content", &format!("Replaces certificate {}: {}", r.number, r.reason));
        x.text("ram:Content", &r.number);
        x.close("ram:IncludedSPSNote");
    }
    if status != "valid" {
        x.open("ram:IncludedSPSNote");
        x.text("ram:Subject", &status.to_uppercase());
        x.text("ram:Content", &status_at.map(rfc3339::to_string).unwrap_or_default());
        x.close("ram:IncludedSPSNote");
    }
    for d in &content.additional_declarations {
        x.open("ram:IncludedSPSNote");
        x.text("ram:Subject", "ADDITIONAL_DECLARATION");
        x.text("ram:Content", d);
        x.close("ram:IncludedSPSNote");
    }
    x.open("ram:IncludedSPSNote");
    x.text("ram:Subject", "EVIDENCE");
    x.text(
        "ram:Content",
        &format!("inspection {} / e-record {}", content.evidence.inspection_no, content.evidence.e_record_no),
    );
    if let Some(d) = &content.evidence.record_digest {
        x.text("ram:Content", &format!("record-digest sha256:{d}"));
    }
    x.close("ram:IncludedSPSNote");
    x.open("ram:SignatorySPSAuthentication");
    x.open("ram:ActualDateTime");
    x.text("udt:DateTimeString", &content.issued_at);
    x.close("ram:ActualDateTime");
    x.open("ram:ProviderSPSParty");
    x.text("ram:Name", &content.issuer.name);
    x.close("ram:ProviderSPSParty");
    x.open("ram:IncludedSPSClause");
    x.text("ram:ID", "1");
    x.text("ram:Content", &format!("Signed electronically with Ed25519 key {}", content.key_id));
    x.close("ram:IncludedSPSClause");
    x.close("ram:SignatorySPSAuthentication");
    x.close("rsm:SPSExchangedDocument");

    x.open("rsm:SPSConsignment");
    party(&mut x, "ram:ConsignorSPSParty", &content.consignor.name, None);
    party(&mut x, "ram:ConsigneeSPSParty", &content.consignee.name, content.consignee.address.as_deref());
    x.open("ram:ExportSPSCountry");
    x.text("ram:ID", &content.export_country);
    x.close("ram:ExportSPSCountry");
    x.open("ram:ImportSPSCountry");
    x.text("ram:ID", &content.destination_country);
    x.close("ram:ImportSPSCountry");
    if let Some(t) = &content.transport {
        if let Some(port) = &t.port_of_unloading {
            x.open("ram:UnloadingBaseportSPSLocation");
            x.text("ram:Name", port);
            x.close("ram:UnloadingBaseportSPSLocation");
        }
        x.open("ram:MainCarriageSPSTransportMovement");
        x.text("ram:ModeCode", t.mode.rec19());
        x.open("ram:UsedSPSTransportMeans");
        x.text("ram:Name", &t.means);
        x.close("ram:UsedSPSTransportMeans");
        x.close("ram:MainCarriageSPSTransportMovement");
    }
    x.open("ram:IncludedSPSConsignmentItem");
    for g in &content.goods {
        x.open("ram:IncludedSPSTradeLineItem");
        x.text("ram:SequenceNumeric", &g.seq.to_string());
        x.text("ram:Description", &format!("{} / {}", g.description_en, g.description_zh));
        x.text("ram:CommonName", &g.name);
        x.text_attr("ram:NetWeightMeasure", ("unitCode", "KGM"), &g.net_weight_kg.to_string());
        x.open("ram:ApplicableSPSClassification");
        x.text("ram:SystemName", "HS");
        x.text("ram:ClassCode", &g.hs_code);
        x.close("ram:ApplicableSPSClassification");
        x.open("ram:PhysicalSPSPackage");
        x.text("ram:LevelCode", "1");
        x.text_attr("ram:ItemQuantity", ("unitCode", &unit_code(&g.unit)), &g.quantity.to_string());
        x.close("ram:PhysicalSPSPackage");
        x.open("ram:OriginSPSCountry");
        x.text("ram:ID", &g.origin_country);
        x.close("ram:OriginSPSCountry");
        if let Some(t) = &content.treatment {
            x.open("ram:AppliedSPSProcess");
            x.text("ram:Description", t);
            x.close("ram:AppliedSPSProcess");
        }
        x.close("ram:IncludedSPSTradeLineItem");
    }
    x.close("ram:IncludedSPSConsignmentItem");
    x.close("rsm:SPSConsignment");
    x.close("rsm:SPSCertificate");
    x.w.into_inner().into_inner()
}

fn type_code(content: &CertificateContent) -> &'static str {
    match content.type_code.as_str() {
        "phytosanitary" => "851",
        "sanitary" => "852",
        _ => "3",
    }
}

/// UN/ECE Recommendation 20 unit codes for the units the HS table uses.
fn unit_code(unit: &str) -> String {
    match unit {
        "kg" => "KGM".into(),
        "t" => "TNE".into(),
        "m3" => "MTQ".into(),
        "l" => "LTR".into(),
        "pcs" | "piece" | "pieces" => "H87".into(),
        other => other.to_uppercase(),
    }
}

fn party(x: &mut Xml, tag: &str, name: &str, address: Option<&str>) {
    x.open(tag);
    x.text("ram:Name", name);
    if let Some(a) = address {
        x.open("ram:SpecifiedSPSAddress");
        x.text("ram:LineOne", a);
        x.close("ram:SpecifiedSPSAddress");
    }
    x.close(tag);
}

// ---- the outbox ----

/// Delivers what is pending (and failed entries with attempts left) whenever rung; runs for the server's
/// life. Starts with one round, for entries a previous process committed but did not deliver.
pub async fn deliver(state: AppState) {
    loop {
        if let Err(e) = deliver_round(&state).await {
            tracing::error!(error = ?e, "SPS delivery round failed");
        }
        state.sps.bell.notified().await;
    }
}

/// One pass over the due entries; answers how many were delivered.
pub async fn deliver_round(state: &AppState) -> Result<usize, ApiError> {
    let due: Vec<(i64, i64, String)> = state.db.read(|c| outbox::due(c, MAX_ATTEMPTS, 100)).await?;
    let mut delivered = 0;
    for (outbox_id, certificate_id, status) in due {
        let Some(cert) =
            state.db.read(move |c| Ok::<_, ApiError>(store::certificate(c, certificate_id)?)).await?
        else {
            continue;
        };
        let st = state.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let content: CertificateContent =
                serde_json::from_str(&cert.content).map_err(|e| format!("stored content: {e}"))?;
            let xml = message(&content, &cert.status, cert.status_changed_at);
            st.sps.sender.send(&Envelope {
                outbox_id,
                number: &cert.number,
                to_country: &content.destination_country,
                certificate_type: &content.type_code,
                status: &status,
                xml: &xml,
            })
        })
        .await?;
        let now = state.now_ms();
        let ok = outcome.is_ok();
        state
            .db
            .write(move |tx| {
                Ok::<_, ApiError>(outbox::attempted(tx, now, outbox_id, outcome.err().as_deref())?)
            })
            .await?;
        delivered += usize::from(ok);
    }
    Ok(delivered)
}

#[cfg(test)]
mod tests {
    use quick_xml::{Reader, events::Event};

    use super::*;
    use crate::certificates::{
        Evidence, IssuedGoods, IssuedParty, IssuedTransport, Replacement, TransportMode,
    };

    fn content() -> CertificateContent {
        let party = |n: &str| IssuedParty {
            name: n.into(),
            customs_code: None,
            address: Some("1 Harbour Rd".into()),
        };
        CertificateContent {
            schema: 1,
            number: "220026SA000001".into(),
            type_code: "sanitary".into(),
            title_en: "Health Certificate".into(),
            title_zh: "卫生证书".into(),
            issued_at: "2026-11-30T08:00:00Z".into(),
            issuer: party("Demo Shanghai Customs"),
            applicant: party("Eastern Orchard Export Co., Ltd."),
            consignor: party("Eastern Orchard Export Co., Ltd."),
            consignee: party("Osaka Seafood KK"),
            export_country: "CN".into(),
            destination_country: "JP".into(),
            transport: Some(IssuedTransport {
                mode: TransportMode::Sea,
                means: "COSCO TAURUS 012E".into(),
                port_of_loading: "CNSHA".into(),
                port_of_unloading: Some("JPOSA".into()),
            }),
            goods: vec![IssuedGoods {
                seq: 1,
                hs_code: "0303110000".into(),
                description_en: "Frozen sockeye salmon".into(),
                description_zh: "冻红大麻哈鱼".into(),
                name: "frozen sockeye salmon <grade A> & co".into(),
                quantity: 1000.0,
                unit: "kg".into(),
                net_weight_kg: 1000.0,
                origin_country: "CN".into(),
                packages: None,
            }],
            additional_declarations: vec!["Fit for human consumption.".into()],
            treatment: None,
            evidence: Evidence {
                inspection_no: "226220000000001".into(),
                e_record_no: "E226220000000001".into(),
                record_heads: vec![],
                record_digest: Some("ab".repeat(32)),
                photo_hashes: vec![],
            },
            replaces: Some(Replacement {
                number: "220026SA000000".into(),
                reason: "consignee corrected".into(),
            }),
            key_id: "k".into(),
        }
    }

    /// (element name, text) pairs in document order. quick-xml reports `&lt;` and friends as separate
    /// entity-reference events, so an element's text is gathered until its end tag.
    fn texts(xml: &[u8]) -> Vec<(String, String)> {
        let mut reader = Reader::from_reader(xml);
        let (mut stack, mut out, mut buf, mut text) = (Vec::new(), Vec::new(), Vec::new(), String::new());
        loop {
            match reader.read_event_into(&mut buf).expect("well-formed XML") {
                Event::Start(s) => {
                    stack.push(String::from_utf8(s.name().as_ref().to_vec()).unwrap());
                    text.clear();
                }
                Event::Text(t) => text.push_str(&t.decode().unwrap()),
                Event::GeneralRef(r) => {
                    let name = String::from_utf8(r.into_inner().into_owned()).unwrap();
                    text.push_str(&quick_xml::escape::unescape(&format!("&{name};")).unwrap());
                }
                Event::End(_) => {
                    let name = stack.pop().unwrap_or_default();
                    if !text.trim().is_empty() {
                        out.push((name, text.trim().to_owned()));
                    }
                    text.clear();
                }
                Event::Eof => break,
                _ => {}
            }
            buf.clear();
        }
        out
    }

    #[test]
    fn the_sps_message_parses_back_with_its_required_elements_and_escaped_text() {
        let xml = message(&content(), "valid", None);
        let t = texts(&xml);
        let has = |name: &str, value: &str| t.iter().any(|(n, v)| n == name && v == value);
        assert!(has("ram:ID", "220026SA000001"), "{t:?}");
        assert!(has("ram:TypeCode", "852"));
        assert!(has("ram:StatusCode", "70"));
        assert!(has("ram:SequenceNumeric", "1"));
        assert!(has("ram:ClassCode", "0303110000"));
        assert!(has("ram:CommonName", "frozen sockeye salmon <grade A> & co"), "markup in text is escaped");
        assert!(has("ram:Content", "220026SA000000"), "a replacement names the replaced number");
        let text = String::from_utf8(xml).unwrap();
        assert!(text.contains(&format!("xmlns:rsm=\"{NS_RSM}\"")));
    }

    #[test]
    fn a_revoked_certificate_carries_status_code_39() {
        let t = texts(&message(&content(), "revoked", Some(0)));
        assert!(t.iter().any(|(n, v)| n == "ram:StatusCode" && v == "39"));
    }
}
