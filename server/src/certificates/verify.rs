//! Public verification of a certificate: `GET /verify/{number}` (no login), an HTML page for a person
//! holding a printout and JSON for a program, from the same URL by content negotiation.
//!
//! What it says is only what a holder of the printout may know: number, type, status (and the
//! replacement), issuer, issue time and the content digest. An unknown number and a digest that does not
//! match (a printout whose content was altered) get the same plain answer: not a valid certificate.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::{CertificateContent, store};
use crate::{
    domain::time::rfc3339,
    error::{ApiError, ApiPath, ApiQuery, ErrorBody},
    state::AppState,
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VerifyQuery {
    /// The SHA-256 digest printed in the QR code; when given, it must match the certificate's.
    #[serde(default)]
    pub digest: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Verification {
    pub number: String,
    /// `valid`, `revoked` or `replaced`.
    pub status: String,
    pub valid: bool,
    /// The certificate that replaces this one.
    pub replaced_by: Option<String>,
    pub replaces: Option<String>,
    pub status_reason: Option<String>,
    #[serde(rename = "type")]
    pub type_code: String,
    pub title_en: String,
    pub title_zh: String,
    pub issuer: String,
    pub issued_at: String,
    pub digest: String,
    /// The key that signed a certificate; notices are not signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

fn not_valid(number: &str, why: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_a_valid_certificate",
        format!("{number} is not a valid certificate or notice: {why}"),
    )
}

async fn lookup(state: &AppState, number: String, digest: Option<String>) -> Result<Verification, ApiError> {
    if number.len() > 32 || !number.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(not_valid(
            &number.chars().take(32).collect::<String>(),
            "no certificate has such a number",
        ));
    }
    let n = number.clone();
    let found = state
        .db
        .read(move |c| -> Result<_, ApiError> {
            let Some(cert) = store::by_number(c, &n)? else { return Ok(None) };
            let replaced_by = cert.replaced_by.map(|id| store::number_of(c, id)).transpose()?.flatten();
            let replaces = cert.replaces.map(|id| store::number_of(c, id)).transpose()?.flatten();
            Ok(Some((cert, replaced_by, replaces)))
        })
        .await?;
    let Some((cert, replaced_by, replaces)) = found else {
        return notice(state, number, digest).await;
    };
    if let Some(d) = digest
        && !d.eq_ignore_ascii_case(&cert.digest)
    {
        return Err(not_valid(
            &number,
            "its content does not match the certificate issued under this number",
        ));
    }
    let content: CertificateContent = serde_json::from_str(&cert.content)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored content: {e}")))?;
    Ok(Verification {
        valid: cert.status == "valid",
        number: cert.number,
        status: cert.status,
        replaced_by,
        replaces,
        status_reason: cert.status_reason,
        type_code: cert.type_code,
        title_en: content.title_en,
        title_zh: content.title_zh,
        issuer: content.issuer.name,
        issued_at: rfc3339::to_string(cert.issued_at),
        digest: cert.digest,
        key_id: Some(cert.key_id),
    })
}

/// A printed notice's number is verified at the same URL as a certificate's.
async fn notice(state: &AppState, number: String, digest: Option<String>) -> Result<Verification, ApiError> {
    let n = number.clone();
    let Some(standing) = state.db.read(move |c| crate::notices::verification(c, &n)).await? else {
        return Err(not_valid(&number, "no certificate or notice has this number"));
    };
    let notice = standing.notice;
    if let Some(d) = digest
        && !d.eq_ignore_ascii_case(&notice.digest)
    {
        return Err(not_valid(&number, "its content does not match the notice issued under this number"));
    }
    let (title_zh, title_en) = notice.kind.titles();
    Ok(Verification {
        number: notice.number,
        status: standing.status.to_owned(),
        valid: standing.status == "valid",
        replaced_by: standing.replaced_by,
        replaces: None,
        status_reason: None,
        type_code: notice.kind.as_str().to_owned(),
        title_en: title_en.to_owned(),
        title_zh: title_zh.to_owned(),
        issuer: notice.issuer,
        issued_at: rfc3339::to_string(notice.issued_at),
        digest: notice.digest,
        key_id: None,
    })
}

/// Does the client prefer HTML? Browsers put `text/html` first; programs ask for JSON or nothing.
fn wants_html(headers: &HeaderMap) -> bool {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let html = accept.find("text/html");
    let json = accept.find("application/json");
    match (html, json) {
        (Some(h), Some(j)) => h < j,
        (Some(_), None) => true,
        _ => false,
    }
}

#[utoipa::path(get, path = "/verify/{number}", tag = "certificates", params(("number" = String, Path), VerifyQuery),
    responses((status = 200, body = Verification, description = "JSON, or an HTML page when the client asks for text/html"),
        (status = 404, body = ErrorBody, description = "not a valid certificate")))]
pub async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(number): ApiPath<String>,
    ApiQuery(q): ApiQuery<VerifyQuery>,
) -> Response {
    let result = lookup(&state, number.clone(), q.digest).await;
    if !wants_html(&headers) {
        return match result {
            Ok(v) => Json(v).into_response(),
            Err(e) => e.into_response(),
        };
    }
    match result {
        Ok(v) => Html(page(&v)).into_response(),
        Err(ApiError::Internal(e)) => ApiError::Internal(e).into_response(),
        Err(_) => (StatusCode::NOT_FOUND, Html(invalid_page(&number))).into_response(),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const STYLE: &str = "body{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em}\
    .valid{color:#0a6b2f}.bad{color:#a11}td{padding:.2em .8em .2em 0;vertical-align:top}code{word-break:break-all}";

fn page(v: &Verification) -> String {
    let (class, headline) = match v.status.as_str() {
        "valid" => ("valid", "Valid certificate 有效证书".to_owned()),
        "revoked" => ("bad", "Revoked 已撤销".to_owned()),
        "void" => ("bad", "Void 已失效".to_owned()),
        _ => (
            "bad",
            format!("Replaced 已替换 — by {}", v.replaced_by.as_deref().map(escape).unwrap_or_default()),
        ),
    };
    let replaced = match &v.replaced_by {
        Some(n) => {
            format!("<tr><td>Replaced by 替换为</td><td><a href=\"/verify/{0}\">{0}</a></td></tr>", escape(n))
        }
        None => String::new(),
    };
    let reason = match &v.status_reason {
        Some(r) => format!("<tr><td>Reason 原因</td><td>{}</td></tr>", escape(r)),
        None => String::new(),
    };
    format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{number} — {status}</title>\
         <style>{STYLE}</style></head><body><h1 class=\"{class}\">{headline}</h1><table>\
         <tr><td>Number 编号</td><td>{number}</td></tr><tr><td>Status 状态</td><td>{status}</td></tr>{replaced}{reason}\
         <tr><td>Type 类型</td><td>{title_zh} {title_en}</td></tr><tr><td>Issuer 签发机构</td><td>{issuer}</td></tr>\
         <tr><td>Issued 签发时间</td><td>{issued}</td></tr><tr><td>Digest 摘要</td><td><code>{digest}</code></td></tr>\
         </table><p>Compare the digest with the one printed on the certificate.</p></body></html>",
        number = escape(&v.number),
        status = escape(&v.status),
        title_zh = escape(&v.title_zh),
        title_en = escape(&v.title_en),
        issuer = escape(&v.issuer),
        issued = escape(&v.issued_at),
        digest = escape(&v.digest),
    )
}

fn invalid_page(number: &str) -> String {
    let number: String = number.chars().take(32).collect();
    format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>Not a valid certificate</title>\
         <style>{STYLE}</style></head><body><h1 class=\"bad\">Not a valid certificate 非有效证书</h1>\
         <p>{} is not a valid certificate: no certificate was issued with this number and content.</p></body></html>",
        escape(&number)
    )
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn accept(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn browsers_get_html_and_programs_get_json() {
        assert!(wants_html(&accept("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")));
        assert!(!wants_html(&accept("application/json")));
        assert!(!wants_html(&accept("application/json, text/html")));
        assert!(!wants_html(&HeaderMap::new()));
    }

    #[test]
    fn the_invalid_page_escapes_what_the_caller_sent() {
        assert!(!invalid_page("<script>").contains("<script>"));
    }
}
