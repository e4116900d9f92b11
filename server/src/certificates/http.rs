//! Certificate endpoints: the enterprise applies (strong login), reviewers decide, revoke and replace,
//! everyone allowed reads; the PDF and the SPS XML. Each handler: extract, call the domain, map the answer.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::Value;

use super::{
    CertApplication, CertificateContent, CertificateRequest, ReplaceRequest, document,
    error::CertificateError, sps, store,
};
use crate::{
    auth::Caller,
    delegations,
    domain::{CertState, Paragraph, Role, Scope},
    error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody},
    state::AppState,
    workflow::required_text,
};

/// Runs `f` in one write transaction; after the commit wakes receipt readers and the SPS outbox.
async fn commit<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&crate::db::Tx<'_>) -> Result<T, CertificateError> + Send + 'static,
{
    let out = state.db.write(move |tx| f(tx)).await?;
    state.receipts_changed();
    state.sps.ring();
    Ok(out)
}

#[utoipa::path(get, path = "/api/v1/certificate-types", tag = "certificates", security(("bearer" = [])),
    responses((status = 200, body = Vec<super::types::CertificateType>)))]
pub async fn list_types(
    State(state): State<AppState>,
) -> Result<Json<Vec<super::types::CertificateType>>, ApiError> {
    Ok(Json(state.db.read(super::types::all).await?))
}

#[utoipa::path(post, path = "/api/v1/certificate-applications", tag = "certificates", request_body = CertificateRequest,
    security(("bearer" = [])),
    responses((status = 201, body = CertApplication), (status = 403, body = ErrorBody, description = "not a strong login, or not your enterprise"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "not released"), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CertificateRequest>,
) -> Result<(StatusCode, Json<CertApplication>), ApiError> {
    let now = state.now_ms();
    let ca = commit(&state, move |tx| super::create(tx, now, &caller, req)).await?;
    Ok((StatusCode::CREATED, Json(ca)))
}

#[utoipa::path(put, path = "/api/v1/certificate-applications/{id}", tag = "certificates", request_body = CertificateRequest,
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = CertApplication), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn amend(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<CertificateRequest>,
) -> Result<Json<CertApplication>, ApiError> {
    let now = state.now_ms();
    Ok(Json(commit(&state, move |tx| super::amend(tx, now, &caller, id, req)).await?))
}

#[utoipa::path(post, path = "/api/v1/certificate-applications/{id}/submit", tag = "certificates",
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = CertApplication, description = "`issued` at once, or `queued` with its failed rules"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<CertApplication>, ApiError> {
    let now = state.now_ms();
    let key = state.certificate_key.clone();
    Ok(Json(commit(&state, move |tx| super::submit(tx, now, &caller, &key, id)).await?))
}

#[utoipa::path(post, path = "/api/v1/certificate-applications/{id}/withdraw", tag = "certificates",
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = CertApplication), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn withdraw(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<CertApplication>, ApiError> {
    let now = state.now_ms();
    Ok(Json(commit(&state, move |tx| super::withdraw(tx, now, &caller, id)).await?))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// Why the reviewer issues despite the failed rules, or why it is rejected (required to reject).
    #[serde(default)]
    pub opinion: Option<Paragraph<2000>>,
}

#[utoipa::path(post, path = "/api/v1/certificate-applications/{id}/issue", tag = "certificates", request_body = DecisionRequest,
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = CertApplication), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn issue(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<DecisionRequest>,
) -> Result<Json<CertApplication>, ApiError> {
    let now = state.now_ms();
    let key = state.certificate_key.clone();
    let opinion = req.opinion.map(|o| o.trim().to_owned()).filter(|o| !o.is_empty());
    Ok(Json(
        commit(&state, move |tx| super::decide(tx, now, &caller, &key, id, true, opinion.as_deref())).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/certificate-applications/{id}/reject", tag = "certificates", request_body = DecisionRequest,
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = CertApplication), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<DecisionRequest>,
) -> Result<Json<CertApplication>, ApiError> {
    let opinion = req.opinion.map(|o| o.trim().to_owned()).unwrap_or_default();
    required_text("opinion", "missing_opinion", &opinion, "why the certificate is refused")?;
    let now = state.now_ms();
    let key = state.certificate_key.clone();
    Ok(Json(
        commit(&state, move |tx| super::decide(tx, now, &caller, &key, id, false, Some(&opinion))).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Reviewers ask for `queued`.
    pub state: Option<CertState>,
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/certificate-applications", tag = "certificates", security(("bearer" = [])),
    params(ListQuery), responses((status = 200, body = Vec<CertApplication>), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<CertApplication>>, ApiError> {
    let filter = q.state;
    let limit = crate::error::in_range("limit", q.limit, 100, 1, 500)?;
    let now = state.now_ms();
    let list = state
        .db
        .read(move |c| match caller.role {
            Role::EnterpriseLegal | Role::EnterpriseOperator => {
                let ids = delegations::enterprises_for(c, &caller, &[Scope::Certificates], now)?;
                Ok(store::list_applications(c, Some(&ids), None, filter, limit)?)
            }
            Role::Admin => Ok(store::list_applications(c, None, None, filter, limit)?),
            Role::Reviewer | Role::Supervisor => {
                Ok(store::list_applications(c, None, Some(caller.unit()?), filter, limit)?)
            }
            Role::Officer => Err(ApiError::forbidden("officers do not handle certificates")),
        })
        .await?;
    Ok(Json(list))
}

#[utoipa::path(get, path = "/api/v1/certificate-applications/{id}", tag = "certificates", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = CertApplication), (status = 404, body = ErrorBody)))]
pub async fn get_application(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<CertApplication>, ApiError> {
    let now = state.now_ms();
    Ok(Json(state.db.read(move |c| super::visible(c, &caller, id, now)).await?))
}

#[utoipa::path(get, path = "/api/v1/certificates/{id}", tag = "certificates", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = store::CertificateView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<store::CertificateView>, ApiError> {
    let now = state.now_ms();
    Ok(Json(
        state
            .db
            .read(move |c| {
                Ok::<_, ApiError>(store::view(c, super::visible_certificate(c, &caller, id, now)?)?)
            })
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/certificates/{id}/revoke", tag = "certificates",
    request_body = crate::workflow::http::ReasonRequest, security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = store::CertificateView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<crate::workflow::http::ReasonRequest>,
) -> Result<Json<store::CertificateView>, ApiError> {
    required_text("reason", "missing_reason", &req.reason, "why the certificate is revoked")?;
    let now = state.now_ms();
    let reason = req.reason.trim().to_owned();
    let view =
        commit(&state, move |tx| Ok(store::view(tx, super::revoke(tx, now, &caller, id, &reason)?)?)).await?;
    Ok(Json(view))
}

#[utoipa::path(post, path = "/api/v1/certificates/{id}/replace", tag = "certificates", request_body = ReplaceRequest,
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 201, body = store::CertificateView, description = "the new certificate"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ReplaceRequest>,
) -> Result<(StatusCode, Json<store::CertificateView>), ApiError> {
    required_text("reason", "missing_reason", &req.reason, "why the certificate is replaced")?;
    let now = state.now_ms();
    let key = state.certificate_key.clone();
    let view =
        commit(&state, move |tx| Ok(store::view(tx, super::replace(tx, now, &caller, &key, id, &req)?)?))
            .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The base of verification URLs: the configured public URL, else the host this request came to (the
/// printout then points back at the server that printed it).
pub(crate) fn public_base(state: &AppState, headers: &HeaderMap) -> String {
    let configured = state.settings.certificates.public_base_url.trim_end_matches('/');
    if !configured.is_empty() {
        return configured.to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.len() <= 255 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b)))
        .unwrap_or("localhost");
    format!("http://{host}")
}

#[utoipa::path(post, path = "/api/v1/certificates/{id}/print", tag = "certificates", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, content_type = "application/pdf", description = "the certificate, printed as copy N"),
        (status = 403, body = ErrorBody, description = "not a strong login or not the certificate's enterprise"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "not valid, or the print limit is reached")))]
/// A POST, not a GET: every print is counted and audited, so it is not safe to repeat.
pub async fn print(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    if !caller.role.is_enterprise() {
        return Err(ApiError::forbidden("certificates are self-printed by their enterprise"));
    }
    let now = state.now_ms();
    let reader = caller.clone();
    let cert = state.db.read(move |c| super::visible_certificate(c, &reader, id, now)).await?;
    if cert.status != "valid" {
        return Err(ApiError::conflict(
            "not_valid",
            format!("certificate {} is {}; only a valid certificate is printed", cert.number, cert.status),
        ));
    }
    let max = state.settings.certificates.max_prints;
    if cert.prints >= max {
        return Err(ApiError::conflict(
            "print_limit_reached",
            format!("certificate {} was printed {} times, the most allowed", cert.number, cert.prints),
        )
        .with_details(serde_json::json!({"prints": cert.prints, "max_prints": max})));
    }
    // Rendered before the print is counted: a failed rendering costs no print. The count then checks
    // that no other print happened in between.
    let url = format!("{}/verify/{}?digest={}", public_base(&state, &headers), cert.number, cert.digest);
    let copy = cert.prints + 1;
    let rendered = cert.clone();
    let bytes = tokio::task::spawn_blocking(move || {
        let content: CertificateContent = serde_json::from_str(&rendered.content)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored content: {e}")))?;
        document::pdf(&content, &document::PrintFacts { digest: &rendered.digest, verify_url: &url, copy })
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("printing: {e}")))
    })
    .await??;
    let counted = commit(&state, move |tx| super::count_print(tx, now, &caller, &cert, max)).await?;
    debug_assert_eq!(counted, copy);
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (header::CONTENT_DISPOSITION, format!("inline; filename=\"certificate-{id}-copy-{copy}.pdf\"")),
        ],
        bytes,
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/v1/certificates/{id}/sps.xml", tag = "certificates", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, content_type = "application/xml", description = "the UN/CEFACT SPS certificate message"),
        (status = 404, body = ErrorBody)))]
pub async fn sps_xml(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let now = state.now_ms();
    let cert = state.db.read(move |c| super::visible_certificate(c, &caller, id, now)).await?;
    let content: CertificateContent = serde_json::from_str(&cert.content)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored content: {e}")))?;
    let xml = sps::message(&content, &cert.status, cert.status_changed_at);
    Ok(([(header::CONTENT_TYPE, "application/xml; charset=utf-8")], xml).into_response())
}

#[utoipa::path(get, path = "/.well-known/certificate-keys.json", tag = "certificates",
    responses((status = 200, description = "the certificate-signing public key as a JWK set")))]
pub async fn keys(State(state): State<AppState>) -> Json<Value> {
    Json(state.certificate_key.jwks())
}
