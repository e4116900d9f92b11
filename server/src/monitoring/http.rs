//! Monitoring endpoints: figures, overdue work, officers, the event stream and its tokens. Thin: parse,
//! read in one reader call, answer JSON or (when asked) CSV.

use std::time::Duration;

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderValue},
    response::{IntoResponse, Response, Sse, sse::KeepAlive},
};
use serde::{Deserialize, Serialize};

use super::{
    OverdueRules, Period, Scope,
    csv::{self, Table},
    events::Subscription,
    figures::{self, Figure, OfficerLoad, OpenConflict, Overdue, SilentHandheld},
    store::{self, Reach},
};
use crate::{
    auth::Caller,
    db::Conn,
    domain::{InstructionState, time::rfc3339},
    error::{ApiError, ApiQuery, ErrorBody, StoreError, invalid},
    state::AppState,
};

/// The longest silence a request may ask about (a month).
const MAX_SILENT_HOURS: i64 = 24 * 31;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FiguresQuery {
    /// Instructions created at or after this time (RFC 3339); default: 30 days before `to`.
    pub from: Option<String>,
    /// ... and before this time; default: now.
    pub to: Option<String>,
    /// List handhelds not synced for this many hours (1–744); default `monitoring.silent_handheld_hours`.
    pub silent_hours: Option<i64>,
}

/// The rules the figures were computed with.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RulesUsed {
    pub slot_result_hours: i64,
    pub approval_wait_hours: i64,
    pub silent_hours: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Figures {
    pub period: Period,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub now: i64,
    pub rules: RulesUsed,
    /// The whole subtree.
    pub total: Figure,
    /// Per customs unit (the instructions' district).
    pub units: Vec<Figure>,
    /// Per inspection site.
    pub sites: Vec<Figure>,
    pub officers: Vec<OfficerLoad>,
    /// Records with open conflicts, whenever created.
    pub open_conflicts: Vec<OpenConflict>,
    pub silent_handhelds: Vec<SilentHandheld>,
}

/// Everything `GET /api/v1/monitoring/figures` answers, in one reader call, under the [`Reach`] the
/// request looked up once.
pub fn collect(
    c: &Conn,
    reach: Reach,
    period: Period,
    rules: &OverdueRules,
    rules_used: RulesUsed,
) -> Result<Figures, StoreError> {
    let f = figures::unit_figures(c, reach, period, rules)?;
    Ok(Figures {
        period,
        now: rules.now,
        total: f.total,
        units: f.units,
        sites: f.sites,
        officers: figures::officers(c, reach, Some(period), rules)?,
        open_conflicts: figures::open_conflicts(c, reach)?,
        silent_handhelds: figures::silent_handhelds(
            c,
            reach,
            rules.now - rules_used.silent_hours * 3_600_000,
        )?,
        rules: rules_used,
    })
}

pub fn rules_used(state: &AppState, silent_hours: Option<i64>) -> Result<RulesUsed, ApiError> {
    let m = &state.settings.monitoring;
    let silent_hours = silent_hours.unwrap_or(m.silent_handheld_hours);
    if !(1..=MAX_SILENT_HOURS).contains(&silent_hours) {
        return Err(invalid("silent_hours", "out_of_range", format!("1 to {MAX_SILENT_HOURS} hours")));
    }
    Ok(RulesUsed {
        slot_result_hours: m.slot_result_hours,
        approval_wait_hours: m.approval_wait_hours,
        silent_hours,
    })
}

#[utoipa::path(get, path = "/api/v1/monitoring/figures", tag = "monitoring", security(("bearer" = [])),
    params(FiguresQuery),
    responses((status = 200, body = Figures, description = "JSON, or CSV (one row per subtree/unit/site) with `Accept: text/csv`"),
        (status = 422, body = ErrorBody)))]
pub async fn figures(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<FiguresQuery>,
) -> Result<Response, ApiError> {
    let scope = Scope::of(&caller)?;
    let now = state.now_ms();
    let period = Period::parse(q.from.as_deref(), q.to.as_deref(), now)?;
    let used = rules_used(&state, q.silent_hours)?;
    let rules = OverdueRules::new(&state.settings.monitoring, now);
    let figures = state.db.read(move |c| collect(c, store::reach(c, scope)?, period, &rules, used)).await?;
    if csv::wanted(&headers) {
        return Ok(figures_csv(&figures).into_response("figures.csv"));
    }
    Ok(Json(figures).into_response())
}

fn figures_csv(f: &Figures) -> Table {
    let mut header = vec!["level", "code", "name", "instructions"];
    header.extend(InstructionState::ALL.iter().map(|s| s.as_str()));
    header.extend([
        "overdue",
        "approved",
        "completion_rate",
        "on_time_rate",
        "issue_to_approved_median_secs",
        "issue_to_approved_p90_secs",
        "non_conforming",
        "non_conformance_rate",
        "forced_releases",
    ]);
    let mut t = Table::new(&header);
    let rows = std::iter::once(("subtree", &f.total))
        .chain(f.units.iter().map(|u| ("unit", u)))
        .chain(f.sites.iter().map(|s| ("site", s)));
    for (level, fig) in rows {
        let mut row = vec![
            level.to_string(),
            fig.code.clone().unwrap_or_default(),
            fig.name.clone().unwrap_or_default(),
            fig.instructions.to_string(),
        ];
        row.extend(
            InstructionState::ALL
                .iter()
                .map(|s| fig.by_state.get(s.as_str()).copied().unwrap_or(0).to_string()),
        );
        row.extend([
            fig.overdue.to_string(),
            fig.approved.to_string(),
            csv::opt(fig.completion_rate),
            csv::opt(fig.on_time_rate),
            csv::opt(fig.issue_to_approved_median_secs),
            csv::opt(fig.issue_to_approved_p90_secs),
            fig.non_conforming.to_string(),
            csv::opt(fig.non_conformance_rate),
            fig.forced_releases.to_string(),
        ]);
        t.row(row);
    }
    t
}

#[utoipa::path(get, path = "/api/v1/monitoring/overdue", tag = "monitoring", security(("bearer" = [])),
    responses((status = 200, body = Vec<Overdue>, description = "JSON, or CSV with `Accept: text/csv`")))]
pub async fn overdue(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let scope = Scope::of(&caller)?;
    let rules = OverdueRules::new(&state.settings.monitoring, state.now_ms());
    let rows = state
        .db
        .read(move |c| figures::overdue(c, store::reach(c, scope)?, &rules, figures::OVERDUE_TABLE_LIMIT))
        .await?;
    if csv::wanted(&headers) {
        let mut t = Table::new(&[
            "instruction_id",
            "inspection_no",
            "site",
            "state",
            "deadline",
            "due_at",
            "reasons",
            "officers",
        ]);
        for o in &rows {
            t.row([
                o.instruction_id.to_string(),
                o.inspection_no.clone(),
                o.site_code.clone(),
                o.state.clone(),
                rfc3339::to_string(o.deadline),
                csv::opt(o.due_at.map(rfc3339::to_string)),
                o.reasons.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(" "),
                o.officers.join(" "),
            ]);
        }
        return Ok(t.into_response("overdue.csv"));
    }
    Ok(Json(rows).into_response())
}

#[utoipa::path(get, path = "/api/v1/officers", tag = "monitoring", security(("bearer" = [])),
    responses((status = 200, body = Vec<OfficerLoad>,
        description = "the field officers of your subtree with their current load; `active` ones may be assigned (by id or username)")))]
pub async fn officers(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<OfficerLoad>>, ApiError> {
    let scope = Scope::of(&caller)?;
    let rules = OverdueRules::new(&state.settings.monitoring, state.now_ms());
    Ok(Json(state.db.read(move |c| figures::officers(c, store::reach(c, scope)?, None, &rules)).await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StreamToken {
    /// Pass as `?token=` to `GET /api/v1/events`; valid until `expires_at` (reconnects may reuse it).
    pub token: String,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: i64,
}

#[utoipa::path(post, path = "/api/v1/events/token", tag = "monitoring", security(("bearer" = [])),
    responses((status = 200, body = StreamToken), (status = 503, body = ErrorBody)))]
pub async fn stream_token(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<StreamToken>, ApiError> {
    Scope::of(&caller)?;
    let now = state.now_ms();
    let expires_at = now + state.settings.monitoring.stream_token_secs * 1000;
    let token = state.events.issue_token(caller, now, expires_at)?;
    Ok(Json(StreamToken { token, expires_at }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// A stream token (`POST /api/v1/events/token`), for clients that cannot send `Authorization`.
    pub token: Option<String>,
    /// Resume after this event id, like the `Last-Event-ID` header (the header wins).
    pub after: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/events", tag = "monitoring", security(("bearer" = [])), params(EventsQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "the id of the last event received")),
    responses((status = 200, content_type = "text/event-stream",
        description = "`event: workflow` with `id:` and a JSON `StreamEvent`; `event: resync` when events were missed (refetch)"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Response, ApiError> {
    let scope = Scope::of(&caller)?;
    let last_event_id = match headers.get("last-event-id") {
        Some(v) => parse_event_id(v)?,
        None => q.after.unwrap_or(0),
    };
    if last_event_id < 0 {
        return Err(ApiError::bad_request("invalid_last_event_id", "event ids are not negative"));
    }
    let units = state.db.read(move |c| store::events::units_of(c, scope)).await?;
    let m = &state.settings.monitoring;
    let sub = Subscription {
        session_id: caller.session_id.clone(),
        session_check: Duration::from_secs(m.keep_alive_secs.max(1)),
        units,
        last_event_id,
        max_backlog: m.max_backlog,
        retry: Duration::from_secs(3),
    };
    let keep_alive = KeepAlive::new().interval(Duration::from_secs(m.keep_alive_secs.max(1)));
    let mut rx = super::events::subscribe(&state, sub).await?;
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut resp = Sse::new(stream).keep_alive(keep_alive).into_response();
    // Proxies (nginx) would otherwise buffer the stream and deliver events late, in clumps.
    resp.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp.headers_mut().insert("cache-control", HeaderValue::from_static("no-cache"));
    Ok(resp)
}

fn parse_event_id(v: &HeaderValue) -> Result<i64, ApiError> {
    v.to_str().ok().and_then(|s| s.trim().parse::<i64>().ok()).ok_or_else(|| {
        ApiError::bad_request("invalid_last_event_id", "`Last-Event-ID` must be an event id this stream sent")
    })
}
