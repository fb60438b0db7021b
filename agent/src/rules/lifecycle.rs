//! The incident lifecycle shared by every rule: `open` → `update` (on change, rate-bounded, and
//! as a heartbeat) → `close` after a quiet period, de-duplicated by key, with a cooldown before
//! the same key may reopen. Fire and smoke policies have no cooldown: nothing here ever delays
//! their `open`.
//!
//! Rules report, each frame, which keys are active and with which objects ([`Lifecycle::seen`]);
//! [`Lifecycle::sweep`] then closes what went quiet. Pure: time is passed in.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use uuid::Uuid;

use super::{Ack, ClipRef, EventState, IncidentEvent, IncidentType, Object, Scope, Severity};

/// What makes an incident one: its rule, where, and (for object rules) which track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The rule.
    pub kind: IncidentType,
    /// Zone, line or whole camera.
    pub scope: Scope,
    /// Track, for per-object rules.
    pub track: Option<u64>,
}

/// Timing and severity of one rule's incidents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Severity of its events.
    pub severity: Severity,
    /// Close after this long without the key being active.
    pub quiet: Duration,
    /// Least time between change-driven updates.
    pub update_min_interval: Duration,
    /// Longest time between updates while active.
    pub heartbeat: Duration,
    /// After a close, the same key may not reopen for this long (zero for fire and smoke).
    pub cooldown: Duration,
}

/// Extra facts of one frame's activation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Facts {
    /// Objects counted (crowding).
    pub count: Option<u32>,
    /// Crossing direction (line crossing): `"a_to_b"` or `"b_to_a"`.
    pub direction: Option<&'static str>,
    /// How long the object has been in the zone (loitering).
    pub dwell: Option<Duration>,
}

#[derive(Debug, Clone)]
struct Open {
    key: Key,
    policy: Policy,
    id: Uuid,
    opened_at: SystemTime,
    last_seen: Duration,
    last_event: Duration,
    reported_count: usize,
    reported_best: f32,
    reported_facts: Facts,
    ack: Option<Arc<Ack>>,
    clip: Option<Arc<ClipRef>>,
    /// The clip is not named on an event yet: the next time the incident is seen, it is.
    clip_due: bool,
}

impl Open {
    /// The `close` event of this incident, at `frame_time`.
    fn close_event(&self, frame_time: SystemTime) -> IncidentEvent {
        IncidentEvent {
            id: self.id,
            kind: self.key.kind,
            state: EventState::Close,
            severity: self.policy.severity,
            scope: self.key.scope,
            track: self.key.track,
            objects: Vec::new(),
            frame_time,
            opened_at: self.opened_at,
            facts: Facts::default(),
            ack: self.ack.clone(),
            clip: self.clip.clone(),
        }
    }
}

/// An acknowledged security incident's heartbeat updates come this many times less often.
/// Fire and smoke keep theirs: an ack never quietens them.
pub const ACKED_HEARTBEAT_FACTOR: u32 = 4;

/// A better score than this much over the last reported one counts as a change.
const SCORE_STEP: f32 = 0.05;

/// The open incidents and cooldowns of one camera.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    open: Vec<Open>,
    cooldown: Vec<(Key, Duration)>,
}

impl Lifecycle {
    /// Whether `key` has an open incident.
    pub fn is_open(&self, key: &Key) -> bool {
        self.open.iter().any(|o| o.key == *key)
    }

    /// Number of open incidents.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// `key` is active on the frame at `now` with `objects`: open it (unless cooling down),
    /// or update it when its objects changed (rate-bounded) or the heartbeat is due.
    #[allow(clippy::too_many_arguments)]
    pub fn seen(
        &mut self,
        key: Key,
        policy: Policy,
        now: Duration,
        frame_time: SystemTime,
        objects: &[Object],
        facts: Facts,
        out: &mut Vec<IncidentEvent>,
    ) {
        let best = objects.iter().map(|o| o.det.score).fold(0.0f32, f32::max);
        let event = |state, id, opened_at, ack, clip| IncidentEvent {
            id,
            kind: key.kind,
            state,
            severity: policy.severity,
            scope: key.scope,
            track: key.track,
            objects: objects.to_vec(),
            frame_time,
            opened_at,
            facts,
            ack,
            clip,
        };
        if let Some(o) = self.open.iter_mut().find(|o| o.key == key) {
            o.last_seen = now;
            let since = now.saturating_sub(o.last_event);
            let changed = objects.len() != o.reported_count
                || best > o.reported_best + SCORE_STEP
                || facts.count != o.reported_facts.count
                || (facts.direction.is_some() && facts.direction != o.reported_facts.direction);
            // `o.policy`: an acknowledgement may have slowed its heartbeat.
            if (changed && since >= policy.update_min_interval)
                || since >= o.policy.heartbeat
                || o.clip_due
            {
                o.last_event = now;
                o.reported_count = objects.len();
                o.reported_best = best;
                o.reported_facts = facts;
                o.clip_due = false;
                let (ack, clip) = (o.ack.clone(), o.clip.clone());
                out.push(event(EventState::Update, o.id, o.opened_at, ack, clip));
            }
            return;
        }
        self.cooldown.retain(|(_, until)| *until > now);
        if self.cooldown.iter().any(|(k, _)| *k == key) {
            return;
        }
        let id = Uuid::now_v7();
        self.open.push(Open {
            key,
            policy,
            id,
            opened_at: frame_time,
            last_seen: now,
            last_event: now,
            reported_count: objects.len(),
            reported_best: best,
            reported_facts: facts,
            ack: None,
            clip: None,
            clip_due: false,
        });
        out.push(event(EventState::Open, id, frame_time, None, None));
    }

    /// Acknowledge open incident `id` (again: the newer one counts): every later event of it
    /// carries `ack`, and a security incident's heartbeat slows down
    /// [`ACKED_HEARTBEAT_FACTOR`] times. Its type, or `None` when it is not open.
    pub fn ack(&mut self, id: Uuid, ack: Arc<Ack>) -> Option<IncidentType> {
        let o = self.open.iter_mut().find(|o| o.id == id)?;
        let fire = matches!(o.key.kind, IncidentType::Fire | IncidentType::Smoke);
        if o.ack.is_none() && !fire {
            o.policy.heartbeat = o.policy.heartbeat.saturating_mul(ACKED_HEARTBEAT_FACTOR);
        }
        o.ack = Some(ack);
        Some(o.key.kind)
    }

    /// Name `clip` on the next event of open incident `id`, and on every later one; false when
    /// it is not open.
    pub fn attach_clip(&mut self, id: Uuid, clip: Arc<ClipRef>) -> bool {
        let Some(o) = self.open.iter_mut().find(|o| o.id == id) else {
            return false;
        };
        o.clip = Some(clip);
        o.clip_due = true;
        true
    }

    /// When open incident `id` opened.
    pub fn opened_at(&self, id: Uuid) -> Option<SystemTime> {
        self.open.iter().find(|o| o.id == id).map(|o| o.opened_at)
    }

    /// Close every open incident now (its rules are being replaced), at `frame_time`.
    pub fn close_all(&mut self, frame_time: SystemTime, out: &mut Vec<IncidentEvent>) {
        for o in self.open.drain(..) {
            out.push(o.close_event(frame_time));
        }
        self.cooldown.clear();
    }

    /// Close every incident not seen for its quiet period.
    pub fn sweep(&mut self, now: Duration, frame_time: SystemTime, out: &mut Vec<IncidentEvent>) {
        let mut i = 0;
        while i < self.open.len() {
            let o = &self.open[i];
            if now.saturating_sub(o.last_seen) >= o.policy.quiet {
                let o = self.open.swap_remove(i);
                out.push(o.close_event(frame_time));
                if !o.policy.cooldown.is_zero() {
                    self.cooldown.push((o.key, now + o.policy.cooldown));
                }
            } else {
                i += 1;
            }
        }
    }
}
