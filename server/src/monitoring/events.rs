//! The live event stream (`GET /api/v1/events`, Server-Sent Events).
//!
//! The events are the receipts: the workflow writes one for every state change of an application,
//! instruction or booking, in the transaction of the change, and every such commit bumps
//! `AppState::receipts`. So the stored event id is the receipt id — append-only, visible in id order
//! because writers are serialised — and no second event table can drift from what happened.
//!
//! After each bump the [`pump`] reads the new rows in id order (with the unit each belongs to) and
//! broadcasts them. A subscriber subscribes to the broadcast *first*, then reads the stored backlog
//! after its `Last-Event-ID`, then streams live, dropping what it already sent: no gap, no repeat.
//! One that falls behind the broadcast buffer gets `event: resync` and should refetch the figures. Each
//! subscriber sees only events of its scope: district or site in its unit subtree.

use std::{collections::HashSet, convert::Infallible, sync::Arc, time::Duration};

use axum::response::sse::Event;
use tokio::sync::{broadcast, mpsc};

pub use super::hub::{Hub, StreamEvent};
use super::store::events::{after, newest_id};
use crate::{auth, error::ApiError, state::AppState};

/// Reads every stored event after the last broadcast one and broadcasts it, after each commit that
/// wrote receipts. Runs for the life of the server.
pub async fn pump(state: AppState) {
    let mut changed = state.receipts.subscribe();
    let mut last = match state.db.read(newest_id).await {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(error = %e, "the event pump could not start");
            return;
        }
    };
    loop {
        loop {
            let batch = match state.db.read(move |c| after(c, last, 500)).await {
                Ok(b) => b,
                Err(e) => {
                    // Subscribers keep their place; the next commit tries again.
                    tracing::error!(error = %e, "reading events failed");
                    break;
                }
            };
            let Some(newest) = batch.last().map(|e| e.id) else { break };
            for e in batch {
                // No subscriber is not an error: the stored events wait for a reconnect.
                let _ = state.events.live.send(Arc::new(e));
            }
            last = newest;
        }
        if changed.changed().await.is_err() {
            return;
        }
    }
}

fn sse(e: &StreamEvent) -> Event {
    Event::default()
        .id(e.id.to_string())
        .event("workflow")
        .json_data(e)
        .unwrap_or_else(|_| Event::default().comment("unserialisable event"))
}

fn resync(reason: &str, newest: Option<i64>) -> Event {
    let e = Event::default().event("resync").data(serde_json::json!({"reason": reason}).to_string());
    match newest {
        Some(id) => e.id(id.to_string()),
        None => e,
    }
}

/// What a subscriber's stream task needs.
pub struct Subscription {
    /// The session the stream was opened with: checked again every `session_check`, and a session
    /// that ended (logout, frozen account or device) ends the stream with `event: session_ended`.
    pub session_id: String,
    pub session_check: Duration,
    pub units: HashSet<i64>,
    pub last_event_id: i64,
    pub max_backlog: i64,
    pub retry: Duration,
}

/// Starts a subscriber: subscribes to the broadcast, then reads the backlog, then forwards live events,
/// each only if it is in scope. Answers the channel the SSE body reads from; the task ends when the
/// client goes away.
pub async fn subscribe(
    state: &AppState,
    sub: Subscription,
) -> Result<mpsc::Receiver<Result<Event, Infallible>>, ApiError> {
    let mut live = state.events.subscribe();
    let from = sub.last_event_id;
    let limit = sub.max_backlog;
    let (backlog, newest) = state
        .db
        .read(move |c| Ok::<_, crate::db::StoreError>((after(c, from, limit + 1)?, newest_id(c)?)))
        .await?;
    let (out, rx) = mpsc::channel(64);
    let units = sub.units;
    let retry = sub.retry;
    let state = state.clone();
    let mut check =
        tokio::time::interval_at(tokio::time::Instant::now() + sub.session_check, sub.session_check);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::spawn(async move {
        let visible = |e: &StreamEvent| e.visible_to(&units);
        if out.send(Ok(Event::default().retry(retry).comment("stream open"))).await.is_err() {
            return;
        }
        let mut last_sent = from;
        if backlog.len() as i64 > limit {
            // Too much was missed to replay; the client refetches and continues from the newest event.
            last_sent = newest;
            if out.send(Ok(resync("backlog_too_long", Some(newest)))).await.is_err() {
                return;
            }
        } else {
            for e in &backlog {
                last_sent = e.id;
                if visible(e) && out.send(Ok(sse(e))).await.is_err() {
                    return;
                }
            }
        }
        loop {
            tokio::select! {
                got = live.recv() => match got {
                    Ok(e) => {
                        if e.id <= last_sent {
                            continue;
                        }
                        last_sent = e.id;
                        if visible(&e) && out.send(Ok(sse(&e))).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "an event subscriber fell behind");
                        if out.send(Ok(resync("fell_behind", None))).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                () = out.closed() => return,
                _ = check.tick() => match auth::caller::live_session(&state, &sub.session_id).await {
                    Ok(()) => {}
                    Err(ApiError::Client { code, message, .. }) => {
                        let data = serde_json::json!({"code": code, "message": message}).to_string();
                        let _ = out.send(Ok(Event::default().event("session_ended").data(data))).await;
                        return;
                    }
                    // The database did not answer: keep streaming, and ask again at the next check.
                    Err(e) => tracing::warn!(error = %e, "could not check an event stream's session"),
                },
            }
        }
    });
    Ok(rx)
}
