//! `GET /jobs/{id}/events`: the job's events as Server-Sent Events. Each has `id:`
//! (its stream id), `event:` (its type) and JSON `data:`. The stream replays from
//! the start, or from after `Last-Event-ID`, follows live, sends a keep-alive
//! comment every 15 s, and ends after the terminal event (`completed`,
//! `cancelled` or `failed`).

use std::convert::Infallible;

use axum::extract::{Extension, Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use optimus_common::store::{Caller, JobEvent};
use serde_json::json;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::error::ApiError;
use crate::AppState;

/// Events replayed per read.
const REPLAY_PAGE: usize = 500;

/// `<ms>-<seq>`, both numbers: a Redis stream id.
fn stream_id(raw: &str) -> Option<String> {
    let (ms, seq) = raw.trim().split_once('-')?;
    let (ms, seq): (u64, u64) = (ms.parse().ok()?, seq.parse().ok()?);
    Some(format!("{ms}-{seq}"))
}

fn sse(event: &JobEvent) -> Event {
    Event::default().id(&event.id).event(&event.kind).data(&event.data)
}

pub async fn stream(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let id = Uuid::parse_str(&raw).map_err(|_| ApiError::BadJobId(raw.clone()))?;
    let slot = state.streams.take_stream(caller.key_id(), state.api.max_streams_per_key)?;
    let record = state.store.get(id, &caller).await?.ok_or(ApiError::JobNotFound(raw))?;
    // The client's Last-Event-ID goes to Redis (and, for live events, into the one
    // read every subscriber shares): only a well-formed stream id gets that far.
    let mut after = match headers.get("last-event-id") {
        None => None,
        Some(raw) => Some(stream_id(raw.to_str().unwrap_or("")).ok_or_else(|| {
            ApiError::invalid(
                "invalid_last_event_id",
                "Last-Event-ID must be an event id this stream sent, such as 1795442216922-0",
            )
        })?),
    };
    let (tx, rx) = mpsc::channel::<Event>(64);
    // The replay is read before answering, so that a failing Redis is a 503, not
    // an empty stream.
    let mut replay = state.store.events(id, after.as_deref(), REPLAY_PAGE).await?;
    tokio::spawn(async move {
        let _slot = slot;
        while let Some(last) = replay.last().cloned() {
            for event in &replay {
                if tx.send(sse(event)).await.is_err() {
                    return;
                }
            }
            if last.is_terminal() {
                return;
            }
            after = Some(last.id);
            if replay.len() < REPLAY_PAGE {
                break;
            }
            match state.store.events(id, after.as_deref(), REPLAY_PAGE).await {
                Ok(more) => replay = more,
                Err(_) => return,
            }
        }
        if record.status.is_terminal() {
            // It had ended before the replay, yet the replay held no end: the
            // client had it already (its Last-Event-ID), or the job's events are
            // no longer kept, and then its end is all there is to tell.
            if after.is_none() {
                let data = json!({ "status": record.status, "note": "this job's events are no longer kept" });
                let _ = tx.send(Event::default().event(record.status.as_str()).data(data.to_string())).await;
            }
            return;
        }
        let mut live = state.events.follow(&state.store, id, after.unwrap_or_else(|| "0-0".into()));
        // A client that leaves frees its subscription (and slot) at once, not at
        // the job's next event, which may never come.
        loop {
            let event = tokio::select! {
                event = live.recv() => event,
                _ = tx.closed() => return,
            };
            let Some(event) = event else { return };
            if tx.send(sse(&event)).await.is_err() || event.is_terminal() {
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
