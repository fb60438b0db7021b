//! A camera's status, as the operations centre sees it on `…/cameras/{camera}/status`:
//! `streaming` (frames arrive), `connecting` (an attempt is under way and nothing failed yet),
//! `offline` (the last attempt failed and is being retried, frames stopped arriving, the camera
//! is disabled or the agent stops), `frozen` and `tampered` (frames arrive and the picture
//! checks object), with the reason in plain words. Typed: two statuses are told apart by their
//! variants, never by the wording of their reasons. Pure: the caller passes the time.

use std::time::{Duration, Instant};

use crate::ingest::picture::Condition;
use crate::ingest::slot::Link;

/// Why a camera is offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offline {
    /// Frames came on this attempt and stopped, this long ago.
    Silent(Duration),
    /// The last attempt failed: the pipeline's reason.
    Failed(String),
    /// The stall watchdog rebuilt the pipeline after frames stopped: its reason.
    Stalled(String),
    /// Disabled in the configuration.
    Disabled,
    /// The agent stops.
    AgentStopped,
}

/// A camera's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// An attempt to connect is under way.
    Connecting,
    /// Frames arrive.
    Streaming,
    /// No frames.
    Offline(Offline),
    /// Frames arrive, the picture does not change.
    Frozen,
    /// Frames arrive, the picture is covered, defocused or moved (the condition says which).
    Tampered(Condition),
}

impl Status {
    /// Name used in payloads.
    pub fn name(&self) -> &'static str {
        match self {
            Status::Connecting => "connecting",
            Status::Streaming => "streaming",
            Status::Offline(_) => "offline",
            Status::Frozen => "frozen",
            Status::Tampered(_) => "tampered",
        }
    }

    /// Why, in plain words (none for `connecting` and `streaming`).
    pub fn reason(&self) -> Option<String> {
        match self {
            Status::Connecting | Status::Streaming => None,
            Status::Offline(Offline::Silent(d)) => Some(format!("no frame for {} s", d.as_secs())),
            Status::Offline(Offline::Failed(e) | Offline::Stalled(e)) => Some(e.clone()),
            Status::Offline(Offline::Disabled) => Some("disabled in the configuration".into()),
            Status::Offline(Offline::AgentStopped) => Some("agent stopped".into()),
            Status::Frozen => Condition::Frozen.reason().map(String::from),
            Status::Tampered(c) => c.reason().map(String::from),
        }
    }

    /// Whether frames arrive (whatever the picture checks say).
    pub fn is_streaming(&self) -> bool {
        matches!(
            self,
            Status::Streaming | Status::Frozen | Status::Tampered(_)
        )
    }

    /// The status with the picture checks' verdict: a streaming camera whose picture is frozen
    /// or tampered with is published as such; the frame flow's status otherwise.
    pub fn with_picture(self, condition: Condition) -> Status {
        match (self, condition) {
            (Status::Streaming, Condition::Frozen) => Status::Frozen,
            (Status::Streaming, c) if c.is_tamper() => Status::Tampered(c),
            (s, _) => s,
        }
    }

    /// Whether `other` is the same status for the centre: equal, or both "no frames since"
    /// (silent for any time, or the stall watchdog's rebuild that follows): a growing
    /// "no frame for N s" is not a change to publish.
    pub fn same_as(&self, other: &Status) -> bool {
        let no_frames =
            |s: &Status| matches!(s, Status::Offline(Offline::Silent(_) | Offline::Stalled(_)));
        no_frames(self) && no_frames(other) || self == other
    }
}

/// The frame flow's status of a camera at `now`, given when its last frame arrived, the
/// supervisor's view and how long without frames counts as a stall: `Connecting`, `Streaming`
/// or `Offline` (silent or failed).
pub fn assess(now: Instant, last_frame: Option<Instant>, link: &Link, stall: Duration) -> Status {
    let fresh = last_frame.is_some_and(|t| now.saturating_duration_since(t) <= stall);
    if fresh {
        return Status::Streaming;
    }
    let frames_this_attempt = match (last_frame, link.attempt_started) {
        (Some(f), Some(a)) => f >= a,
        _ => false,
    };
    if frames_this_attempt && let Some(f) = last_frame {
        return Status::Offline(Offline::Silent(now.saturating_duration_since(f)));
    }
    match &link.last_error {
        Some(e) if link.stalled => Status::Offline(Offline::Stalled(e.clone())),
        Some(e) => Status::Offline(Offline::Failed(e.clone())),
        None => Status::Connecting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALL: Duration = Duration::from_secs(3);

    #[test]
    fn the_states_of_a_camera() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut link = Link {
            attempt_started: Some(t0),
            ..Link::default()
        };
        assert_eq!(assess(at(1), None, &link, STALL), Status::Connecting);
        assert_eq!(assess(at(2), Some(at(1)), &link, STALL), Status::Streaming);
        // Frames stop while the pipeline still runs.
        let s = assess(at(10), Some(at(1)), &link, STALL);
        assert_eq!(
            (s.name(), s.reason().as_deref()),
            ("offline", Some("no frame for 9 s"))
        );
        // The attempt failed and a new one is under way: the failure is the reason.
        link.last_error = Some("could not connect: connection refused".into());
        link.attempt_started = Some(at(11));
        let s = assess(at(12), Some(at(1)), &link, STALL);
        assert_eq!(
            s,
            Status::Offline(Offline::Failed(
                "could not connect: connection refused".into()
            ))
        );
        // Frames again.
        assert_eq!(
            assess(at(13), Some(at(13)), &link, STALL),
            Status::Streaming
        );
    }

    #[test]
    fn the_picture_checks_change_only_a_streaming_status() {
        assert_eq!(
            Status::Streaming.with_picture(Condition::Frozen),
            Status::Frozen
        );
        let covered = Status::Streaming.with_picture(Condition::Covered);
        assert_eq!(covered, Status::Tampered(Condition::Covered));
        assert_eq!(covered.name(), "tampered");
        assert!(covered.is_streaming());
        let offline = Status::Offline(Offline::AgentStopped);
        assert_eq!(offline.clone().with_picture(Condition::Frozen), offline);
        assert_eq!(
            Status::Streaming.with_picture(Condition::Clear),
            Status::Streaming
        );
    }

    #[test]
    fn a_growing_silence_is_the_same_status_and_a_new_cause_is_not() {
        let silent = |s| Status::Offline(Offline::Silent(Duration::from_secs(s)));
        assert!(silent(4).same_as(&silent(40)));
        assert!(!silent(4).same_as(&Status::Offline(Offline::Failed("refused".into()))));
        assert!(
            !Status::Offline(Offline::Failed("refused".into()))
                .same_as(&Status::Offline(Offline::Failed("timed out".into())))
        );
        assert!(!Status::Tampered(Condition::Covered).same_as(&Status::Tampered(Condition::Moved)));
        assert!(Status::Frozen.same_as(&Status::Frozen));
    }

    #[test]
    fn the_stall_watchdogs_rebuild_continues_a_silence() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut link = Link {
            attempt_started: Some(t0),
            ..Link::default()
        };
        let silent = assess(at(5), Some(at(1)), &link, STALL);
        assert_eq!(silent.reason().as_deref(), Some("no frame for 4 s"));
        // The watchdog tears the pipeline down and a new attempt starts.
        link.last_error =
            Some("no frame for 10 s (stall watchdog; the pipeline is rebuilt)".into());
        link.stalled = true;
        link.attempt_started = Some(at(11));
        let stalled = assess(at(12), Some(at(1)), &link, STALL);
        assert_eq!(stalled.name(), "offline");
        assert!(stalled.same_as(&silent) && silent.same_as(&stalled));
        // A real failure after it is a new cause.
        link.last_error = Some("could not connect: connection refused".into());
        link.stalled = false;
        let refused = assess(at(20), Some(at(1)), &link, STALL);
        assert!(!refused.same_as(&stalled));
    }
}
