//! What each camera is doing, as the operations centre sees it on
//! `…/cameras/{camera}/status`: `streaming` (frames arrive), `connecting` (an attempt is under
//! way and nothing failed yet), `offline` (the last attempt failed and is being retried, or
//! frames stopped arriving), with the reason in plain words. Pure: the caller passes the time.

use std::time::{Duration, Instant};

use super::slot::Link;

/// A camera's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraState {
    /// An attempt to connect is under way.
    Connecting,
    /// Frames arrive.
    Streaming,
    /// No frames: the camera is unreachable, refuses, or stopped sending.
    Offline,
}

impl CameraState {
    /// Name used in payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            CameraState::Connecting => "connecting",
            CameraState::Streaming => "streaming",
            CameraState::Offline => "offline",
        }
    }
}

/// The state of a camera at `now`, given when its last frame arrived, the supervisor's view
/// and how long without frames counts as a stall.
pub fn assess(
    now: Instant,
    last_frame: Option<Instant>,
    link: &Link,
    stall: Duration,
) -> (CameraState, Option<String>) {
    let fresh = last_frame.is_some_and(|t| now.saturating_duration_since(t) <= stall);
    if fresh {
        return (CameraState::Streaming, None);
    }
    let frames_this_attempt = match (last_frame, link.attempt_started) {
        (Some(f), Some(a)) => f >= a,
        _ => false,
    };
    if frames_this_attempt && let Some(f) = last_frame {
        let secs = now.saturating_duration_since(f).as_secs();
        return (CameraState::Offline, Some(format!("no frame for {secs} s")));
    }
    match &link.last_error {
        Some(e) => (CameraState::Offline, Some(e.clone())),
        None => (CameraState::Connecting, None),
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
            last_error: None,
        };
        assert_eq!(
            assess(at(1), None, &link, STALL),
            (CameraState::Connecting, None)
        );
        assert_eq!(
            assess(at(2), Some(at(1)), &link, STALL).0,
            CameraState::Streaming
        );
        // Frames stop while the pipeline still runs.
        let (s, why) = assess(at(10), Some(at(1)), &link, STALL);
        assert_eq!(
            (s, why.as_deref()),
            (CameraState::Offline, Some("no frame for 9 s"))
        );
        // The attempt failed and a new one is under way: the failure is the reason.
        link.last_error = Some("could not connect: connection refused".into());
        link.attempt_started = Some(at(11));
        let (s, why) = assess(at(12), Some(at(1)), &link, STALL);
        assert_eq!(s, CameraState::Offline);
        assert_eq!(
            why.as_deref(),
            Some("could not connect: connection refused")
        );
        // Frames again.
        assert_eq!(
            assess(at(13), Some(at(13)), &link, STALL).0,
            CameraState::Streaming
        );
    }
}
