//! Camera-fault incidents: `camera_offline` (no frames for `offline_s`), `camera_frozen` (the
//! picture does not change) and `camera_tamper` (covered, defocused, moved). Pure: the camera
//! monitor passes what it assessed and the time, and publishes the events this returns (their
//! payload is `incident::payload::fault`).
//!
//! A fault incident opens once and closes when the fault ends; frozen and tamper close too when
//! the camera stops streaming (then it is the offline incident's turn).

use std::time::{Duration, SystemTime};

use uuid::Uuid;

use super::Status;
use crate::ingest::picture::Condition;
use crate::rules::EventState;

/// The kinds of camera fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// No frames.
    Offline,
    /// Frames arrive, the picture does not change.
    Frozen,
    /// Covered, defocused or moved.
    Tamper,
}

impl FaultKind {
    /// The incident type.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Offline => "camera_offline",
            FaultKind::Frozen => "camera_frozen",
            FaultKind::Tamper => "camera_tamper",
        }
    }
}

/// One fault incident event.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultEvent {
    /// Incident id (UUIDv7), the same for open and close.
    pub id: Uuid,
    /// Which fault.
    pub kind: FaultKind,
    /// Open or close.
    pub state: EventState,
    /// Why, in plain words (the open event's reason is repeated on close).
    pub reason: String,
    /// When the incident opened.
    pub opened_at: SystemTime,
    /// When this event happened.
    pub at: SystemTime,
}

/// What the monitor saw of a camera at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// Its status from the frame flow ([`super::assess`]).
    pub flow: &'a Status,
    /// Time since the last frame (or since the monitor started, if none ever came).
    pub silent_for: Duration,
    /// What the picture checks say.
    pub condition: Condition,
}

/// Open fault incidents of one camera.
#[derive(Debug)]
pub struct FaultTracker {
    offline_after: Duration,
    open: [Option<(Uuid, SystemTime, String)>; 3],
}

impl FaultTracker {
    /// A tracker opening `camera_offline` after `offline_after` without frames.
    pub fn new(offline_after: Duration) -> Self {
        FaultTracker {
            offline_after,
            open: [None, None, None],
        }
    }

    /// Change the offline threshold (a configuration reload); open incidents stay open.
    pub fn set_offline_after(&mut self, offline_after: Duration) {
        self.offline_after = offline_after;
    }

    /// Whether a fault incident of `kind` is open.
    pub fn is_open(&self, kind: FaultKind) -> bool {
        self.open[kind as usize].is_some()
    }

    /// Close every open fault incident at `now` (the agent stops).
    pub fn close_all(&mut self, now: SystemTime, out: &mut Vec<FaultEvent>) {
        for (kind, slot) in [FaultKind::Offline, FaultKind::Frozen, FaultKind::Tamper]
            .into_iter()
            .zip(self.open.iter_mut())
        {
            if let Some((id, opened_at, reason)) = slot.take() {
                out.push(FaultEvent {
                    id,
                    kind,
                    state: EventState::Close,
                    reason,
                    opened_at,
                    at: now,
                });
            }
        }
    }

    /// Open and close incidents for what was seen at `now`.
    pub fn update(&mut self, seen: Seen<'_>, now: SystemTime, out: &mut Vec<FaultEvent>) {
        let streaming = seen.flow.is_streaming();
        let offline = (!streaming && seen.silent_for >= self.offline_after).then(|| {
            seen.flow
                .reason()
                .unwrap_or_else(|| "no frames from the camera".into())
        });
        let frozen = (streaming && seen.condition == Condition::Frozen)
            .then(|| Condition::Frozen.reason().unwrap_or_default().to_string());
        let tamper = (streaming && seen.condition.is_tamper())
            .then(|| seen.condition.reason().unwrap_or_default().to_string());
        for (kind, wanted) in [
            (FaultKind::Offline, offline),
            (FaultKind::Frozen, frozen),
            (FaultKind::Tamper, tamper),
        ] {
            let slot = &mut self.open[kind as usize];
            match (slot.as_ref(), wanted) {
                (None, Some(reason)) => {
                    let id = Uuid::now_v7();
                    *slot = Some((id, now, reason.clone()));
                    out.push(FaultEvent {
                        id,
                        kind,
                        state: EventState::Open,
                        reason,
                        opened_at: now,
                        at: now,
                    });
                }
                (Some((id, opened_at, reason)), None) => {
                    out.push(FaultEvent {
                        id: *id,
                        kind,
                        state: EventState::Close,
                        reason: reason.clone(),
                        opened_at: *opened_at,
                        at: now,
                    });
                    *slot = None;
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Offline;

    fn seen(flow: &Status, silent_s: u64, condition: Condition) -> Seen<'_> {
        Seen {
            flow,
            silent_for: Duration::from_secs(silent_s),
            condition,
        }
    }

    fn refused() -> Status {
        Status::Offline(Offline::Failed("connection refused".into()))
    }

    #[test]
    fn offline_opens_after_offline_s_and_closes_when_frames_return() {
        let mut f = FaultTracker::new(Duration::from_secs(30));
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut out = Vec::new();
        f.update(seen(&refused(), 29, Condition::Clear), t, &mut out);
        assert!(out.is_empty(), "not yet");
        f.update(seen(&refused(), 30, Condition::Clear), t, &mut out);
        f.update(seen(&Status::Connecting, 40, Condition::Clear), t, &mut out);
        assert_eq!(out.len(), 1, "opened once");
        assert_eq!(
            (out[0].kind, out[0].state, out[0].reason.as_str()),
            (FaultKind::Offline, EventState::Open, "connection refused")
        );
        f.update(seen(&Status::Streaming, 0, Condition::Clear), t, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!((out[1].state, out[1].id), (EventState::Close, out[0].id));
        assert!(!f.is_open(FaultKind::Offline));
    }

    #[test]
    fn frozen_and_tamper_follow_the_picture_and_close_when_the_stream_stops() {
        let mut f = FaultTracker::new(Duration::from_secs(30));
        let t = SystemTime::UNIX_EPOCH;
        let mut out = Vec::new();
        f.update(seen(&Status::Streaming, 0, Condition::Frozen), t, &mut out);
        f.update(seen(&Status::Streaming, 0, Condition::Covered), t, &mut out);
        let kinds: Vec<_> = out.iter().map(|e| (e.kind, e.state)).collect();
        assert_eq!(
            kinds,
            [
                (FaultKind::Frozen, EventState::Open),
                (FaultKind::Frozen, EventState::Close),
                (FaultKind::Tamper, EventState::Open)
            ]
        );
        assert_eq!(out[2].reason, "covered: the picture is dark or flat");
        out.clear();
        f.update(seen(&refused(), 5, Condition::Covered), t, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].kind, out[0].state),
            (FaultKind::Tamper, EventState::Close)
        );
    }

    #[test]
    fn a_stop_closes_every_open_fault_with_its_reason() {
        let mut t = FaultTracker::new(Duration::from_secs(5));
        let mut out = Vec::new();
        let at = SystemTime::UNIX_EPOCH;
        t.update(seen(&refused(), 9, Condition::Clear), at, &mut out);
        assert_eq!(out.len(), 1);
        out.clear();
        t.close_all(at + Duration::from_secs(1), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].state, EventState::Close);
        assert_eq!(out[0].reason, "connection refused");
        assert!(!t.is_open(FaultKind::Offline));
    }
}
