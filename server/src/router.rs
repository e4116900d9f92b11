//! The whole HTTP surface in one place: every route, the policy that guards it, and the layers around it.

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderName, StatusCode},
    middleware::{Next, from_fn_with_state},
    response::{IntoResponse, Response},
    routing::get,
};
use tower_http::{
    compression::CompressionLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    applications, audit,
    auth::{
        self, Policy,
        caller::{Restriction, authorize},
    },
    bookings, certificates, delegations, devices, documents,
    domain::Role,
    error::ApiError,
    instructions, messages, monitoring, notices, onboarding, ops, orgs, photos, receipts, records, reference,
    review, selection,
    state::AppState,
    workflow,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "fieldcheck", description = "Customs field inspection with offline sync."),
    modifiers(&BearerAuth),
    components(schemas(crate::error::ErrorBody))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
            ),
        );
    }
}

const ENTERPRISE: &[Role] = &[Role::EnterpriseOperator, Role::EnterpriseLegal];
const LEGAL: &[Role] = &[Role::EnterpriseLegal];
const ADMIN: &[Role] = &[Role::Admin];
const DEVICE_USERS: &[Role] = &[Role::Officer, Role::Supervisor, Role::Admin];
const OFFICER: &[Role] = &[Role::Officer];
const REVIEWERS: &[Role] = &[Role::Reviewer, Role::Supervisor, Role::Admin];
const SUPERVISORS: &[Role] = &[Role::Supervisor, Role::Admin];
const CUSTOMS: &[Role] = &[Role::Officer, Role::Reviewer, Role::Supervisor, Role::Admin];

/// Routes guarded by one policy.
fn guarded(state: &AppState, policy: Policy, routes: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    routes.route_layer(from_fn_with_state((state.clone(), policy), authorize))
}

/// The API routes and their OpenAPI document, built from the same declarations so neither can drift.
fn api(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let public = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(auth::http::login))
        .routes(routes!(auth::http::refresh))
        .routes(routes!(auth::http::challenge))
        .routes(routes!(auth::http::strong_login))
        .routes(routes!(auth::http::jwks))
        .routes(routes!(onboarding::http::register))
        .routes(routes!(certificates::http::keys))
        .routes(routes!(certificates::verify::verify))
        .routes(routes!(messages::http::receipt_jwks));
    // Signed messages carry their own authentication (the signature), so no bearer token; the batch body
    // has its own limit, and every message in it is bounded again on its own.
    let message_intake = OpenApiRouter::new()
        .routes(routes!(messages::http::receive))
        .layer(DefaultBodyLimit::max(state.settings.messages.max_request_bytes));
    let testing = if state.settings.testing.manual_clock {
        OpenApiRouter::new().routes(routes!(ops::set_clock))
    } else {
        OpenApiRouter::new()
    };

    let signed_in = guarded(
        state,
        Policy::any(),
        OpenApiRouter::new()
            .routes(routes!(auth::http::logout))
            .routes(routes!(auth::http::me))
            .routes(routes!(messages::http::evidence))
            .routes(routes!(messages::http::application_evidence))
            .routes(routes!(orgs::http::list_units))
            .routes(routes!(orgs::http::get_enterprise))
            .routes(routes!(bookings::http::get_calendar))
            .routes(routes!(bookings::http::availability))
            .routes(routes!(bookings::http::list))
            .routes(routes!(bookings::http::get))
            .routes(routes!(bookings::http::reschedule))
            .routes(routes!(bookings::http::cancel)),
    );
    let admin = guarded(
        state,
        Policy::roles(ADMIN),
        OpenApiRouter::new()
            .routes(routes!(orgs::http::create_unit))
            .routes(routes!(orgs::http::create_enterprise))
            .routes(routes!(orgs::http::create_user, orgs::http::list_users))
            .routes(routes!(orgs::http::set_user_status))
            .routes(routes!(orgs::http::set_signing_key))
            .routes(routes!(messages::http::register_platform_signer))
            .routes(routes!(reference::http::set_sampling_ratio))
            .routes(routes!(audit::http::list))
            .routes(routes!(audit::http::verify))
            .routes(routes!(onboarding::http::list))
            .routes(routes!(onboarding::http::approve))
            .routes(routes!(onboarding::http::return_)),
    );
    // Restricted sessions (`auth::caller::Restriction`) reach these and nothing else: the password
    // change, and a registering legal person's own registration.
    let restricted = guarded(
        state,
        Policy::any().admitting(&[Restriction::PasswordChange, Restriction::Registration]),
        OpenApiRouter::new().routes(routes!(auth::http::change_password)),
    );
    let registrant = guarded(
        state,
        Policy::roles(LEGAL).admitting(&[Restriction::Registration]),
        OpenApiRouter::new().routes(routes!(onboarding::http::own, onboarding::http::amend)),
    );
    let officer = guarded(
        state,
        Policy::roles(OFFICER),
        OpenApiRouter::new().routes(routes!(devices::http::register)).routes(routes!(devices::http::claim)),
    );
    // Authenticated by the handler itself: a WebSocket client cannot send an Authorization header, so
    // the token comes in the query string.
    let sync_ws = OpenApiRouter::new().routes(routes!(records::ws::connect));
    let sync = guarded(
        state,
        Policy::roles(OFFICER),
        OpenApiRouter::new().routes(routes!(records::http::sync)).routes(routes!(records::http::index)),
    )
    .layer(DefaultBodyLimit::max(records::http::BODY_LIMIT));
    // Officers' notes and evidence are customs-internal: enterprises see the instruction, not the record.
    let records =
        guarded(state, Policy::roles(CUSTOMS), OpenApiRouter::new().routes(routes!(records::http::record)));
    // Photo bodies are streamed to files by the handlers themselves, so the JSON body limit does not apply;
    // `photos.max_bytes` does. Only the assigned officers upload; reads are scoped in the handlers.
    let photo_uploads = guarded(
        state,
        Policy::roles(OFFICER),
        OpenApiRouter::new()
            .routes(routes!(photos::http::put))
            .routes(routes!(photos::http::create_upload))
            .routes(routes!(photos::http::upload_status, photos::http::append, photos::http::cancel_upload))
            .routes(routes!(photos::http::finish))
            .layer(axum::middleware::map_response(photos::http::close_after_refusal)),
    );
    // Supporting documents are streamed to files like photos (`documents.max_bytes`, not the JSON limit);
    // whose subject it is, is checked in the domain before a byte is read.
    let document_uploads = guarded(
        state,
        Policy::roles(ENTERPRISE),
        OpenApiRouter::new()
            .routes(routes!(documents::http::put_for_application))
            .routes(routes!(documents::http::put_for_certificate))
            .layer(axum::middleware::map_response(photos::http::close_after_refusal)),
    );
    let document_reads = guarded(
        state,
        Policy::any(),
        OpenApiRouter::new()
            .routes(routes!(documents::http::list_for_application))
            .routes(routes!(documents::http::list_for_certificate))
            .routes(routes!(documents::http::download))
            .routes(routes!(notices::http::print)),
    );
    let photo_reads = guarded(
        state,
        Policy::any(),
        OpenApiRouter::new()
            .routes(routes!(photos::http::original))
            .routes(routes!(photos::http::thumbnail))
            .routes(routes!(photos::http::metadata)),
    );
    let device_users = guarded(
        state,
        Policy::roles(DEVICE_USERS),
        OpenApiRouter::new().routes(routes!(devices::http::list)).routes(routes!(devices::http::set_status)),
    );
    let enterprise = guarded(
        state,
        Policy::roles(ENTERPRISE),
        OpenApiRouter::new()
            .routes(routes!(delegations::http::list))
            .routes(routes!(delegations::http::grants))
            .routes(routes!(receipts::http::list))
            .routes(routes!(messages::http::signed_receipts))
            .routes(routes!(bookings::http::create))
            .routes(routes!(bookings::http::accept_alternative)),
    );
    let applications = guarded(
        state,
        Policy::any(),
        OpenApiRouter::new()
            .routes(routes!(applications::http::create, applications::http::list))
            .routes(routes!(applications::http::get, applications::http::update))
            .routes(routes!(applications::http::submit))
            .routes(routes!(applications::http::copy))
            .routes(routes!(applications::http::history))
            .routes(routes!(applications::http::e_record))
            .routes(routes!(instructions::http::list))
            .routes(routes!(instructions::http::get))
            .routes(routes!(reference::http::hs_code))
            .routes(routes!(reference::http::checklist_template)),
    );
    // Reading certificate work is scoped per caller in the domain (enterprise and delegates, the district's
    // subtree); changing it is the enterprise's with a strong login (the seeds' card login), deciding,
    // revoking and replacing the reviewers'.
    let certificate_reads = guarded(
        state,
        Policy::any(),
        OpenApiRouter::new()
            .routes(routes!(certificates::http::list_types))
            .routes(routes!(certificates::http::list))
            .routes(routes!(certificates::http::get_application))
            .routes(routes!(certificates::http::get))
            .routes(routes!(certificates::http::sps_xml)),
    );
    let certificate_work = guarded(
        state,
        Policy::roles(ENTERPRISE).strong(),
        OpenApiRouter::new()
            .routes(routes!(certificates::http::create))
            .routes(routes!(certificates::http::amend))
            .routes(routes!(certificates::http::submit))
            .routes(routes!(certificates::http::withdraw))
            .routes(routes!(certificates::http::print)),
    );
    let certificate_review = guarded(
        state,
        Policy::roles(REVIEWERS),
        OpenApiRouter::new()
            .routes(routes!(certificates::http::issue))
            .routes(routes!(certificates::http::reject))
            .routes(routes!(certificates::http::revoke))
            .routes(routes!(certificates::http::replace)),
    );
    let review = guarded(
        state,
        Policy::roles(REVIEWERS),
        OpenApiRouter::new()
            .routes(routes!(review::http::review))
            .routes(routes!(review::http::batch))
            .routes(routes!(documents::http::request_again))
            .routes(routes!(workflow::http::revoke_approval))
            .routes(routes!(selection::http::get))
            .routes(routes!(reference::http::sampling_ratios))
            .routes(routes!(instructions::http::stats)),
    );
    let supervision = guarded(
        state,
        Policy::roles(SUPERVISORS),
        OpenApiRouter::new()
            .routes(routes!(workflow::http::assign))
            .routes(routes!(workflow::http::cancel))
            .routes(routes!(workflow::http::extend_deadline))
            .routes(routes!(workflow::http::approve))
            .routes(routes!(workflow::http::return_result))
            .routes(routes!(workflow::http::resolve))
            .routes(routes!(workflow::http::disposal_done))
            .routes(routes!(review::http::set_auto_review))
            .routes(routes!(bookings::http::put_calendar))
            .routes(routes!(bookings::http::confirm))
            .routes(routes!(bookings::http::decline))
            .routes(routes!(bookings::http::no_show)),
    );
    // Monitoring is for supervisors of a subtree; enterprises and officers get none of it.
    let monitoring = guarded(
        state,
        Policy::roles(SUPERVISORS),
        OpenApiRouter::new()
            .routes(routes!(monitoring::http::figures))
            .routes(routes!(monitoring::http::overdue))
            .routes(routes!(monitoring::http::officers))
            .routes(routes!(monitoring::http::stream_token)),
    );
    // `EventSource` cannot send `Authorization`: the stream also takes a stream token or the dashboard
    // cookie.
    let stream = guarded(
        state,
        Policy::roles(SUPERVISORS).browser(),
        OpenApiRouter::new().routes(routes!(monitoring::http::events)),
    );
    let legal = guarded(
        state,
        Policy::roles(LEGAL),
        OpenApiRouter::new()
            .routes(routes!(delegations::http::create))
            .routes(routes!(delegations::http::who_can_act))
            .routes(routes!(delegations::http::revoke))
            .routes(routes!(delegations::http::grant))
            .routes(routes!(orgs::http::list_operators, orgs::http::create_operator))
            .routes(routes!(orgs::http::confirm_operator))
            .routes(routes!(orgs::http::set_operator_status))
            .routes(routes!(orgs::http::set_operator_validity)),
    );
    // Releasing goods without an approved conforming result is a decision the supervisor signs for.
    let supervision_strong = guarded(
        state,
        Policy::roles(SUPERVISORS).strong(),
        OpenApiRouter::new().routes(routes!(workflow::http::force_release)),
    );
    // Issuing a credential to someone else is certificate-grade work: it needs the legal person's key.
    let legal_strong = guarded(
        state,
        Policy::roles(LEGAL).strong(),
        OpenApiRouter::new().routes(routes!(orgs::http::set_operator_signing_key)),
    );

    // Groups may share a path with different methods (GET /delegations for enterprise users, POST for the
    // legal person); axum merges those per method, each keeping its own policy layer.
    public
        .merge(message_intake)
        .merge(testing)
        .merge(signed_in)
        .merge(restricted)
        .merge(registrant)
        .merge(admin)
        .merge(officer)
        .merge(sync)
        .merge(sync_ws)
        .merge(records)
        .merge(photo_uploads)
        .merge(photo_reads)
        .merge(document_uploads)
        .merge(document_reads)
        .merge(device_users)
        .merge(enterprise)
        .merge(applications)
        .merge(review)
        .merge(certificate_reads)
        .merge(certificate_work)
        .merge(certificate_review)
        .merge(supervision)
        .merge(monitoring)
        .merge(stream)
        .merge(legal)
        .merge(legal_strong)
        .merge(supervision_strong)
        .split_for_parts()
}

/// Cuts off a request (its body included) running longer than `limit` with a 408 in our error shape
/// (tower-http's timeout layer answers with an empty body).
async fn time_limit(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request took longer than {} s and was cut off; a change it asked for may still have been \
                 applied, so retry only what is safe to repeat",
                limit.as_secs()
            ),
        )
        .with_details(serde_json::json!({ "request_timeout_secs": limit.as_secs() }))
        .into_response(),
    }
}

/// The dashboard: an HTML page, not part of the API document. The page takes the cookie (a browser
/// navigation cannot send a bearer token) and sends a browser that is not signed in to the login page.
fn dashboard(state: &AppState) -> Router<AppState> {
    let page = Router::new()
        .route("/dashboard", get(monitoring::dashboard::page))
        .route_layer(from_fn_with_state((state.clone(), Policy::roles(SUPERVISORS).browser()), authorize))
        .layer(axum::middleware::map_response(monitoring::dashboard::to_login));
    let session = Router::new()
        .route("/dashboard/session", axum::routing::post(monitoring::dashboard::session))
        .route_layer(from_fn_with_state((state.clone(), Policy::roles(SUPERVISORS)), authorize));
    // Signing out is a POST the page's own form sends with the cookie (`SameSite=Strict`: no other site
    // can make a browser send it).
    let logout = Router::new()
        .route("/dashboard/logout", axum::routing::post(monitoring::dashboard::logout))
        .route_layer(from_fn_with_state(
            (state.clone(), Policy::roles(SUPERVISORS).browser().cookie_post()),
            authorize,
        ))
        .layer(axum::middleware::map_response(monitoring::dashboard::to_login));
    page.merge(session).merge(logout).route("/dashboard/login", get(monitoring::dashboard::login_page))
}

/// The application: routes, error fallbacks and the tower layers, in the order requests meet them.
pub fn app(state: AppState) -> Router {
    let (api, openapi) = api(&state);
    let api = api.merge(dashboard(&state));
    let openapi = Arc::new(openapi);
    let request_id = HeaderName::from_static("x-request-id");
    let timeout = Duration::from_secs(state.settings.server.request_timeout_secs);
    api.route("/api/v1/openapi.json", get(move || async move { Json(openapi.as_ref().clone()) }))
        .route("/.well-known/jwks.json", get(auth::http::jwks))
        .route("/.well-known/receipts-jwks.json", get(messages::http::receipt_jwks))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such endpoint; see /api/v1/openapi.json")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
        .layer(from_fn_with_state(state.metrics.clone(), ops::metrics::track))
        .layer(DefaultBodyLimit::max(state.settings.server.body_limit_bytes))
        .layer(CompressionLayer::new())
        .layer(from_fn_with_state(timeout, time_limit))
        // Spans name the path, never the query: stream and WebSocket tokens travel there and must not be logged.
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            tracing::debug_span!("request", method = %req.method(), path = %req.uri().path(), version = ?req.version())
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}
