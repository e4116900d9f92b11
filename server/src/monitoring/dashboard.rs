//! `GET /dashboard`: the supervisor's page, rendered on the server with askama (templates checked at
//! compile time, HTML escaped by default) from the same figures as the API, plus ~40 lines of plain
//! JavaScript that listen to the event stream and swap in a fresh render of `<main>` (`?partial=1`) when
//! something happens. No build step, no client framework.
//!
//! A browser cannot add `Authorization` to a page load or an `EventSource`, so the login page trades
//! the API's login answer for an `HttpOnly`, `SameSite=Strict` cookie (`POST /dashboard/session`); the
//! dashboard and the event stream accept it for GET only (see `Policy::browser`).

use askama::Template;
use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    OverdueRules, Period, Scope,
    figures::{self, Figure, Overdue, PhotoPoint, SitePoint},
    http::{Figures, collect, rules_used},
    store,
};
use crate::{
    auth::{Caller, caller::session_cookie},
    domain::{InstructionState, time::rfc3339},
    error::{ApiError, ApiQuery},
    state::AppState,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardQuery {
    /// Only the `<main>` part, for the live refresh.
    pub partial: Option<u8>,
    /// RFC 3339, or a day (`2026-11-01`, from its start) as the page's period picker sends it.
    pub from: Option<String>,
    /// RFC 3339, or a day (`2026-11-30`, up to its end).
    pub to: Option<String>,
}

/// The period picker's days as times: a `from` day starts at its midnight (UTC), a `to` day ends at the
/// next one; anything else is passed on as RFC 3339 for [`Period::parse`] to judge.
fn picked(day_or_time: Option<&str>, end: bool) -> Option<String> {
    let v = day_or_time?;
    if v.len() != 10 {
        return Some(v.to_owned());
    }
    match rfc3339::parse(&format!("{v}T00:00:00Z")) {
        Ok(ms) => Some(rfc3339::to_string(if end { ms + 86_400_000 } else { ms })),
        Err(_) => Some(v.to_owned()),
    }
}

/// The day of `ms` (UTC), as a date input shows it.
fn day(ms: i64) -> String {
    rfc3339::to_string(ms).chars().take(10).collect()
}

/// One tile: a figure and its bilingual label.
struct Tile {
    key: &'static str,
    label: &'static str,
    value: String,
    alert: bool,
}

/// A bar of the by-state chart: the share of the widest bar in percent.
struct Bar {
    state: &'static str,
    count: i64,
    width: i64,
}

struct SiteRow {
    code: String,
    name: String,
    instructions: i64,
    overdue: i64,
    completion: String,
    on_time: String,
    median: String,
    p90: String,
    non_conformance: String,
    forced: i64,
}

struct OverdueRow {
    id: i64,
    inspection_no: String,
    site: String,
    state: String,
    deadline: String,
    reasons: String,
    officers: String,
}

struct OfficerRow {
    username: String,
    display_name: String,
    assigned: i64,
    in_progress: i64,
    submitted: i64,
    done: i64,
    overdue: i64,
    photos_missing: i64,
    /// "3 edits, 1 photo" still on the handhelds, as they last said; "unknown" when none ever said.
    pending: String,
    last_sync: String,
}

/// A handheld's pending report in words.
fn pending_words(changes: Option<i64>, photos: Option<i64>) -> String {
    match (changes, photos) {
        (None, None) => "unknown".to_owned(),
        (c, p) => format!("{} edits, {} photos", c.unwrap_or(0), p.unwrap_or(0)),
    }
}

struct ConflictRow {
    id: i64,
    inspection_no: String,
    site: String,
    open: i64,
}

/// A point of the SVG map, already projected into the 600 × 400 view box.
struct MapDot {
    x: String,
    y: String,
    colour: &'static str,
    far: bool,
    title: String,
}

struct MapSite {
    x: String,
    y: String,
    code: String,
    /// Labels near the right edge go to the left of their mark, so they stay inside the box.
    anchor: &'static str,
    dx: i32,
}

#[derive(Template)]
#[template(path = "dashboard_main.html")]
struct MainView {
    now: String,
    period: String,
    tiles: Vec<Tile>,
    bars: Vec<Bar>,
    sites: Vec<SiteRow>,
    overdue: Vec<OverdueRow>,
    officers: Vec<OfficerRow>,
    conflicts: Vec<ConflictRow>,
    silent: Vec<String>,
    dots: Vec<MapDot>,
    map_sites: Vec<MapSite>,
    far_count: usize,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct PageView {
    username: String,
    main: String,
    /// The period picker's days: the first and the last day of the period shown.
    from_day: String,
    to_day: String,
    /// How often the page fetches itself while open (a third of the access token's life), so the sliding
    /// session renews the cookie even when no event arrives.
    renew_secs: i64,
}

#[derive(Template)]
#[template(path = "dashboard_login.html")]
struct LoginView {
    /// Why the browser is here again: its sign-in ended (expired or logged out elsewhere).
    expired: bool,
}

fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{:.0}%", v * 100.0))
}

fn hours(secs: Option<i64>) -> String {
    secs.map_or_else(|| "–".into(), |s| format!("{:.1} h", s as f64 / 3600.0))
}

fn tiles(f: &Figures) -> Vec<Tile> {
    let t = &f.total;
    let tile = |key, label, value: String, alert| Tile { key, label, value, alert };
    vec![
        tile("instructions", "指令 Instructions", t.instructions.to_string(), false),
        tile("overdue", "逾期 Overdue", t.overdue.to_string(), t.overdue > 0),
        tile("approved", "已审批 Approved", t.approved.to_string(), false),
        tile("completion_rate", "完成率 Completion", percent(t.completion_rate), false),
        tile("on_time_rate", "按时率 On time", percent(t.on_time_rate), false),
        tile("median", "用时中位数 Median issue→approved", hours(t.issue_to_approved_median_secs), false),
        tile("p90", "用时P90 p90 issue→approved", hours(t.issue_to_approved_p90_secs), false),
        tile("non_conformance_rate", "不合格率 Non-conformance", percent(t.non_conformance_rate), false),
        tile(
            "forced_releases",
            "强制放行 Forced releases",
            t.forced_releases.to_string(),
            t.forced_releases > 0,
        ),
        tile(
            "open_conflicts",
            "未决冲突 Open conflicts",
            f.open_conflicts.len().to_string(),
            !f.open_conflicts.is_empty(),
        ),
        tile(
            "silent_handhelds",
            "失联手持机 Silent handhelds",
            f.silent_handhelds.len().to_string(),
            !f.silent_handhelds.is_empty(),
        ),
    ]
}

fn bars(t: &Figure) -> Vec<Bar> {
    let max = t.by_state.values().copied().max().unwrap_or(0).max(1);
    InstructionState::ALL
        .iter()
        .map(|s| {
            let count = t.by_state.get(s.as_str()).copied().unwrap_or(0);
            Bar { state: s.as_str(), count, width: count * 100 / max }
        })
        .collect()
}

fn colour(state: &str) -> &'static str {
    match state {
        "approved" => "#2e7d32",
        "submitted" => "#1565c0",
        "in_progress" | "assigned" => "#f9a825",
        "force_released" => "#6a1b9a",
        "cancelled" => "#757575",
        _ => "#ef6c00",
    }
}

/// Projects photo and site positions into the view box (equirectangular around their bounding box,
/// longitudes scaled by the cosine of the mean latitude, so shapes are not stretched).
fn map(points: &[PhotoPoint], sites: &[SitePoint]) -> (Vec<MapDot>, Vec<MapSite>) {
    let all: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p.latitude, p.longitude))
        .chain(sites.iter().map(|s| (s.latitude, s.longitude)))
        .collect();
    if all.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let (mut lat0, mut lat1, mut lon0, mut lon1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (lat, lon) in &all {
        lat0 = lat0.min(*lat);
        lat1 = lat1.max(*lat);
        lon0 = lon0.min(*lon);
        lon1 = lon1.max(*lon);
    }
    let k = ((lat0 + lat1) / 2.0).to_radians().cos().max(0.1);
    let (w, h) = (((lon1 - lon0) * k).max(0.01), (lat1 - lat0).max(0.01));
    let scale = (560.0 / w).min(360.0 / h);
    let project = |lat: f64, lon: f64| {
        let x = 20.0 + (lon - lon0) * k * scale + (560.0 - w * scale) / 2.0;
        let y = 20.0 + (lat1 - lat) * scale + (360.0 - h * scale) / 2.0;
        (format!("{x:.1}"), format!("{y:.1}"))
    };
    let dots = points
        .iter()
        .map(|p| {
            let (x, y) = project(p.latitude, p.longitude);
            let distance = p
                .km_from_site
                .map_or_else(|| "site location unknown".into(), |k| format!("{k} km from site"));
            MapDot {
                x,
                y,
                colour: colour(&p.state),
                far: p.far,
                title: format!(
                    "instruction {} ({}), site {}: {distance}",
                    p.instruction_id, p.state, p.site_code
                ),
            }
        })
        .collect();
    let sites = sites
        .iter()
        .map(|s| {
            let (x, y) = project(s.latitude, s.longitude);
            let right = x.parse::<f64>().is_ok_and(|x| x > 450.0);
            MapSite {
                x,
                y,
                code: s.code.clone(),
                anchor: if right { "end" } else { "start" },
                dx: if right { -8 } else { 8 },
            }
        })
        .collect();
    (dots, sites)
}

fn main_view(f: Figures, overdue: Vec<Overdue>, points: Vec<PhotoPoint>, sites: Vec<SitePoint>) -> MainView {
    let (dots, map_sites) = map(&points, &sites);
    MainView {
        now: rfc3339::to_string(f.now),
        period: format!("{} – {}", rfc3339::to_string(f.period.from), rfc3339::to_string(f.period.to)),
        tiles: tiles(&f),
        bars: bars(&f.total),
        sites: f
            .sites
            .iter()
            .map(|s| SiteRow {
                code: s.code.clone().unwrap_or_default(),
                name: s.name.clone().unwrap_or_default(),
                instructions: s.instructions,
                overdue: s.overdue,
                completion: percent(s.completion_rate),
                on_time: percent(s.on_time_rate),
                median: hours(s.issue_to_approved_median_secs),
                p90: hours(s.issue_to_approved_p90_secs),
                non_conformance: percent(s.non_conformance_rate),
                forced: s.forced_releases,
            })
            .collect(),
        overdue: overdue
            .into_iter()
            .map(|o| OverdueRow {
                id: o.instruction_id,
                inspection_no: o.inspection_no,
                site: o.site_code,
                state: o.state,
                deadline: rfc3339::to_string(o.deadline),
                reasons: o.reasons.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "),
                officers: o.officers.join(", "),
            })
            .collect(),
        officers: f
            .officers
            .iter()
            .map(|o| OfficerRow {
                username: o.username.clone(),
                display_name: o.display_name.clone(),
                assigned: o.assigned,
                in_progress: o.in_progress,
                submitted: o.submitted,
                done: o.done,
                overdue: o.overdue,
                photos_missing: o.photos_missing,
                pending: pending_words(o.pending_changes, o.pending_photos),
                last_sync: o
                    .handhelds
                    .iter()
                    .map(|h| {
                        format!(
                            "{}: {}",
                            h.device_id,
                            h.last_seen_at.map_or("never".into(), rfc3339::to_string)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            })
            .collect(),
        conflicts: f
            .open_conflicts
            .iter()
            .map(|c| ConflictRow {
                id: c.instruction_id,
                inspection_no: c.inspection_no.clone(),
                site: c.site_code.clone(),
                open: c.open_conflicts,
            })
            .collect(),
        silent: f
            .silent_handhelds
            .iter()
            .map(|h| {
                let seen = h
                    .last_seen_at
                    .map_or("never synced".into(), |t| format!("last sync {}", rfc3339::to_string(t)));
                let pending = pending_words(h.pending.pending_changes, h.pending.pending_photos);
                format!("{} ({}): {seen}; still pending on it: {pending}", h.device_id, h.officer)
            })
            .collect(),
        far_count: points.iter().filter(|p| p.far).count(),
        dots,
        map_sites,
    }
}

fn render(t: &impl Template) -> Result<String, ApiError> {
    t.render().map_err(|e| ApiError::Internal(anyhow::anyhow!("rendering the dashboard: {e}")))
}

/// The page, or only its `<main>` for the live refresh.
pub async fn page(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DashboardQuery>,
) -> Result<Response, ApiError> {
    let scope = Scope::of(&caller)?;
    let now = state.now_ms();
    let (from, to) = (picked(q.from.as_deref(), false), picked(q.to.as_deref(), true));
    let period = Period::parse(from.as_deref(), to.as_deref(), now)?;
    let used = rules_used(&state, None)?;
    let rules = OverdueRules::new(&state.settings.monitoring, now);
    let far_km = state.settings.monitoring.far_from_site_km;
    let (f, overdue, points, sites) = state
        .db
        .read(move |c| -> Result<_, ApiError> {
            let reach = store::reach(c, scope)?;
            Ok((
                collect(c, reach, period, &rules, used)?,
                figures::overdue(c, reach, &rules, 100)?,
                figures::photo_points(c, reach, period, far_km)?,
                figures::site_points(c, reach)?,
            ))
        })
        .await?;
    let main = render(&main_view(f, overdue, points, sites))?;
    let html = if q.partial.is_some() {
        main
    } else {
        let (from_day, to_day) = (day(period.from), day(period.to - 1));
        let renew_secs = (state.settings.auth.access_ttl_secs / 3).max(10);
        render(&PageView { username: caller.principal.username, main, from_day, to_day, renew_secs })?
    };
    let mut resp = Html(html).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// A browser that is not signed in goes to the login page; one whose sign-in ended (expired, logged
/// out, frozen) too, and the page says so.
pub async fn to_login(resp: Response) -> Response {
    if resp.status() != StatusCode::UNAUTHORIZED {
        return resp;
    }
    // The refusal is our small JSON error; its code tells "never signed in" from "ended".
    let body = axum::body::to_bytes(resp.into_body(), 64 * 1024).await.unwrap_or_default();
    let code = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_owned));
    let to = if code.as_deref() == Some("missing_token") {
        "/dashboard/login"
    } else {
        "/dashboard/login?expired=1"
    };
    Redirect::to(to).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginQuery {
    pub expired: Option<u8>,
}

pub async fn login_page(ApiQuery(q): ApiQuery<LoginQuery>) -> Result<Html<String>, ApiError> {
    Ok(Html(render(&LoginView { expired: q.expired.is_some() })?))
}

/// Signs the dashboard out: the session ends (its tokens and open streams with it, as `POST
/// /api/v1/auth/logout`) and the cookie is cleared; the browser lands on the login page.
pub async fn logout(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    crate::auth::http::logout(State(state.clone()), caller).await?;
    let mut resp = Redirect::to("/dashboard/login").into_response();
    let clear = session_cookie(&state.settings, "", 0);
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&clear).map_err(|e| ApiError::Internal(anyhow::anyhow!("cookie: {e}")))?,
    );
    Ok(resp)
}

/// Trades the bearer token of a supervisor's login for the dashboard cookie, which lives as long as the
/// token does.
pub async fn session(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    Scope::of(&caller)?;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(_, t)| t.trim())
        .ok_or_else(|| {
            ApiError::unauthorized("missing_token", "send the access token as `Authorization: Bearer …`")
        })?;
    let cookie = session_cookie(&state.settings, token, state.settings.auth.access_ttl_secs);
    let value = HeaderValue::from_str(&cookie)
        .map_err(|_| ApiError::bad_request("invalid_token", "the token cannot be a cookie"))?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(header::SET_COOKIE, value);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(lat: f64, lon: f64, far: bool) -> PhotoPoint {
        PhotoPoint {
            sha256: "a".repeat(64),
            instruction_id: 1,
            state: "approved".into(),
            site_code: "2201".into(),
            latitude: lat,
            longitude: lon,
            km_from_site: None,
            far,
        }
    }

    #[test]
    fn the_map_keeps_every_point_inside_the_view_box() {
        let points = [point(30.0, 122.0, false), point(43.4, 11.9, true), point(-33.9, 151.2, false)];
        let (dots, _) = map(&points, &[]);
        for d in dots {
            let (x, y): (f64, f64) = (d.x.parse().unwrap(), d.y.parse().unwrap());
            assert!((0.0..=600.0).contains(&x) && (0.0..=400.0).contains(&y), "{x},{y}");
        }
    }

    #[test]
    fn labels_and_values_are_escaped_in_the_page() {
        let view = PageView {
            username: "<script>alert(1)</script>".into(),
            main: String::new(),
            from_day: "2026-11-01".into(),
            to_day: "2026-11-30".into(),
            renew_secs: 300,
        };
        let html = view.render().unwrap();
        assert!(!html.contains("<script>alert(1)"), "{html}");
    }
}
