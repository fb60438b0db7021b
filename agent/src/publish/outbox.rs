//! The outbox's pure state: which stored message to send next, which are in flight (handed to
//! the MQTT client, waiting for their PUBACK), and which to evict when the outbox is over its
//! byte bound. No IO: the SQLite store and the MQTT session drive it and act on its answers,
//! and every transition is unit-tested here (in the spirit of uplink's serializer).
//!
//! Lanes are drained strictly in priority order — fire/smoke, security incidents, camera
//! health, telemetry — and within a lane in insertion order (which is `seq` order; a snapshot is
//! stored right after its incident, so it travels after it). When over the bound, the lowest
//! lane's oldest row goes first; a fire/smoke row is evicted only when nothing lower is left.
//!
//! A row's life: `Pending` → `Handed` (given to the MQTT client, which numbers it) →
//! `InFlight(pkid)` (the client said which packet id carries it) → acknowledged (removed). A
//! dropped connection puts every handed or in-flight row back to `Pending`, in its place.

use std::collections::VecDeque;

/// Priority lanes, highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lane {
    /// Fire and smoke incidents and their snapshots.
    Fire = 0,
    /// Security incidents and their snapshots.
    Security = 1,
    /// Camera status and camera-fault incidents.
    Health = 2,
    /// Health telemetry.
    Telemetry = 3,
}

/// Every lane, highest priority first.
pub const LANES: [Lane; 4] = [Lane::Fire, Lane::Security, Lane::Health, Lane::Telemetry];

/// A stored message as the state sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// Store id (SQLite rowid), increasing with insertion.
    pub id: u64,
    /// Its lane.
    pub lane: Lane,
    /// Payload size, counted against the bound.
    pub bytes: usize,
    /// When it was stored (Unix milliseconds), for the age of the oldest row.
    pub created_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Pending,
    Handed,
    /// Sent as packet `pkid`, the `order`-th send of this state, at `at_ms`.
    InFlight {
        pkid: u16,
        order: u64,
        at_ms: u64,
    },
}

/// A row and what the state knows of it.
#[derive(Debug, Clone, Copy)]
struct Entry {
    row: Row,
    slot: Slot,
    /// Connections that ended soon after this row was sent, while it was the oldest
    /// unacknowledged one. A row with a strike is a suspect: it goes alone.
    strikes: u8,
    /// Passing refusals (MQTT 5 reason codes such as quota exceeded) in a row.
    refusals: u8,
}

/// Passing refusals after which a row is set aside; the session waits longer after each
/// (1, 2, 4, 8 s: about a quarter of a minute of a broker refusing it).
pub const MAX_REFUSALS: u8 = 5;

/// A connection that ends within this long of a row's send counts against that row.
pub const STRIKE_WINDOW_MS: u64 = 5_000;

/// Strikes after which a row is set aside as a dead letter: the first may be bad luck; the
/// others come while the row was alone on the connection.
pub const MAX_STRIKES: u8 = 3;

/// What a dropped connection says about the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// Nothing: no row was sent shortly before (an outage, a broker restart).
    None,
    /// Row `id` got a strike and goes alone from now on.
    Strike(u64),
    /// This row reached [`MAX_STRIKES`]: removed, to be set aside as a dead letter.
    SetAside(Row),
}

/// The outbox state.
#[derive(Debug, Clone)]
pub struct Outbox {
    lanes: [VecDeque<Entry>; 4],
    bytes: usize,
    max_bytes: usize,
    max_in_flight: usize,
    in_flight: usize,
    sends: u64,
    evicted: [u64; 4],
}

impl Outbox {
    /// An empty outbox bounded to `max_bytes`, with at most `max_in_flight` unacknowledged
    /// messages at a time.
    pub fn new(max_bytes: usize, max_in_flight: usize) -> Self {
        Outbox {
            lanes: Default::default(),
            bytes: 0,
            max_bytes,
            max_in_flight: max_in_flight.max(1),
            in_flight: 0,
            sends: 0,
            evicted: [0; 4],
        }
    }

    /// Stored bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Rows in `lane`.
    pub fn depth(&self, lane: Lane) -> usize {
        self.lanes[lane as usize].len()
    }

    /// Rows evicted from `lane` so far.
    pub fn evicted(&self, lane: Lane) -> u64 {
        self.evicted[lane as usize]
    }

    /// Rows handed to the client and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The window: unacknowledged rows at most.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// The byte bound.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Forget row `id` whatever its state (it is gone from the store, or set aside).
    pub fn remove(&mut self, id: u64) -> Option<Row> {
        for lane in &mut self.lanes {
            if let Some(pos) = lane.iter().position(|e| e.row.id == id) {
                let e = lane.remove(pos)?;
                if e.slot != Slot::Pending {
                    self.in_flight -= 1;
                }
                self.bytes -= e.row.bytes;
                return Some(e.row);
            }
        }
        None
    }

    /// Rows stored, all lanes.
    pub fn len(&self) -> usize {
        self.lanes.iter().map(VecDeque::len).sum()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When the oldest row of `lane` was stored (Unix milliseconds).
    pub fn oldest_ms(&self, lane: Lane) -> Option<u64> {
        self.lanes[lane as usize].front().map(|e| e.row.created_ms)
    }

    /// Add a stored row (rows of a lane must come in increasing id order). Returns the rows
    /// evicted to stay within the bound, which the store must delete (and report: it is data
    /// loss).
    pub fn insert(&mut self, row: Row) -> Vec<Row> {
        self.lanes[row.lane as usize].push_back(Entry {
            row,
            slot: Slot::Pending,
            strikes: 0,
            refusals: 0,
        });
        self.bytes += row.bytes;
        let mut evicted = Vec::new();
        while self.bytes > self.max_bytes {
            // The lowest lane with anything in it, oldest row first; fire only when alone.
            let Some(lane) = LANES.iter().rev().copied().find(|&l| self.depth(l) > 0) else {
                break;
            };
            let Some(victim) = self.lanes[lane as usize].pop_front() else {
                break;
            };
            if victim.slot != Slot::Pending {
                self.in_flight -= 1;
            }
            self.bytes -= victim.row.bytes;
            self.evicted[lane as usize] += 1;
            evicted.push(victim.row);
        }
        evicted
    }

    /// The next row to publish, if the in-flight window allows: the first pending row of the
    /// highest lane that has one. A suspect row (one with a strike) goes alone: it waits until
    /// nothing is in flight, and nothing goes beside it.
    pub fn next(&self) -> Option<Row> {
        if self.in_flight >= self.max_in_flight || self.suspect_out() {
            return None;
        }
        let e = self
            .lanes
            .iter()
            .find_map(|lane| lane.iter().find(|e| e.slot == Slot::Pending))?;
        (e.strikes == 0 || self.in_flight == 0).then_some(e.row)
    }

    fn suspect_out(&self) -> bool {
        self.entries()
            .any(|e| e.strikes > 0 && e.slot != Slot::Pending)
    }

    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.lanes.iter().flat_map(|lane| lane.iter())
    }

    fn entry(&mut self, id: u64) -> Option<&mut Entry> {
        self.lanes
            .iter_mut()
            .find_map(|lane| lane.iter_mut().find(|e| e.row.id == id))
    }

    /// Row `id` was handed to the client (which gives it a packet id when it sends it). False
    /// if the row is not pending (unknown, evicted or already handed).
    pub fn handed(&mut self, id: u64) -> bool {
        match self.entry(id) {
            Some(e) if e.slot == Slot::Pending => {
                e.slot = Slot::Handed;
                self.in_flight += 1;
                true
            }
            _ => false,
        }
    }

    /// The client sent handed row `id` as packet `pkid` at `now_ms`. False if the row is not
    /// handed (it was evicted meanwhile): then its acknowledgement will find nothing, as it
    /// should.
    pub fn sent(&mut self, id: u64, pkid: u16, now_ms: u64) -> bool {
        let order = self.sends;
        match self.entry(id) {
            Some(e) if e.slot == Slot::Handed => {
                e.slot = Slot::InFlight {
                    pkid,
                    order,
                    at_ms: now_ms,
                };
                self.sends += 1;
                true
            }
            _ => false,
        }
    }

    /// The broker acknowledged packet `pkid`: the row it carried, which the store may now
    /// delete. `None` for an unknown packet id (a row already evicted, or a stale ack).
    pub fn acked(&mut self, pkid: u16) -> Option<Row> {
        // (A later acknowledgement ends a run of refusals by removing the row.)
        for lane in &mut self.lanes {
            let found = lane
                .iter()
                .position(|e| matches!(e.slot, Slot::InFlight { pkid: p, .. } if p == pkid));
            if let Some(pos) = found {
                let e = lane.remove(pos)?;
                self.in_flight -= 1;
                self.bytes -= e.row.bytes;
                return Some(e.row);
            }
        }
        None
    }

    /// The broker refused packet `pkid` (an MQTT 5 reason code). A `lasting` refusal (not
    /// authorized, an invalid topic) or the [`MAX_REFUSALS`]th in a row removes the row and
    /// returns it, for the store to set aside as a dead letter; otherwise the row is pending
    /// again and goes next (the session waits first: [`Outbox::refusals`]). `None` for an
    /// unknown packet id.
    pub fn refused(&mut self, pkid: u16, lasting: bool) -> Option<Blame> {
        let id = self
            .entries()
            .find(|e| matches!(e.slot, Slot::InFlight { pkid: p, .. } if p == pkid))
            .map(|e| e.row.id)?;
        self.in_flight -= 1;
        let e = self.entry(id)?;
        e.slot = Slot::Pending;
        e.refusals = e.refusals.saturating_add(1);
        if lasting || e.refusals >= MAX_REFUSALS {
            return self.remove(id).map(Blame::SetAside);
        }
        Some(Blame::Strike(id))
    }

    /// Passing refusals in a row of row `id` so far.
    pub fn refusals(&self, id: u64) -> u8 {
        self.entries()
            .find(|e| e.row.id == id)
            .map_or(0, |e| e.refusals)
    }

    /// The connection dropped at `now_ms`: everything handed or in flight is pending again, in
    /// its place, and will be sent again (the broker's session is never relied upon).
    ///
    /// A broker that cannot take a message (too large, not allowed) closes the connection right
    /// after it arrives, before acknowledging it. So the oldest unacknowledged row, when it was
    /// sent less than [`STRIKE_WINDOW_MS`] ago, gets a strike and goes alone from then on; at
    /// [`MAX_STRIKES`] it is removed and returned, for the store to set aside as a dead letter,
    /// and the lane moves on. A network outage (noticed by keep-alive, seconds later) or a
    /// broker restart rarely lands within that window three times in a row on the same row,
    /// alone on its connection.
    pub fn disconnected(&mut self, now_ms: u64) -> Blame {
        let culprit = self
            .entries()
            .filter_map(|e| match e.slot {
                Slot::InFlight { order, at_ms, .. } => Some((order, at_ms, e.row.id)),
                _ => None,
            })
            .min()
            .filter(|&(_, at_ms, _)| now_ms.saturating_sub(at_ms) <= STRIKE_WINDOW_MS)
            .map(|(_, _, id)| id);
        self.requeue();
        let Some(e) = culprit.and_then(|id| self.entry(id)) else {
            return Blame::None;
        };
        e.strikes += 1;
        let (id, strikes) = (e.row.id, e.strikes);
        if strikes < MAX_STRIKES {
            return Blame::Strike(id);
        }
        self.remove(id).map_or(Blame::None, Blame::SetAside)
    }

    /// Everything handed over goes again, blaming nothing: the agent left the connection
    /// itself (a move to another broker).
    pub fn requeue(&mut self) {
        for lane in &mut self.lanes {
            for e in lane.iter_mut() {
                e.slot = Slot::Pending;
            }
        }
        self.in_flight = 0;
    }

    /// Make pending rows of more than `bytes` suspects with one try left: the broker already
    /// closed the connection on a large message, so each goes alone, and is set aside if it is
    /// refused too.
    pub fn suspect_above(&mut self, bytes: usize) {
        for lane in &mut self.lanes {
            for e in lane.iter_mut() {
                if e.row.bytes > bytes && e.slot == Slot::Pending {
                    e.strikes = e.strikes.max(MAX_STRIKES - 1);
                }
            }
        }
    }

    /// Strikes against row `id` so far.
    pub fn strikes(&self, id: u64) -> u8 {
        self.entries()
            .find(|e| e.row.id == id)
            .map_or(0, |e| e.strikes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u64, lane: Lane) -> Row {
        Row {
            id,
            lane,
            bytes: 100,
            created_ms: id * 1000,
        }
    }

    /// Send everything the window allows; return the ids in send order.
    fn drain(o: &mut Outbox, pkid: &mut u16) -> Vec<u64> {
        let mut sent = Vec::new();
        while let Some(r) = o.next() {
            *pkid += 1;
            assert!(o.handed(r.id));
            assert!(!o.handed(r.id), "a row is handed once");
            assert!(o.sent(r.id, *pkid, 0));
            sent.push(r.id);
        }
        sent
    }

    #[test]
    fn lanes_drain_in_priority_order_and_rows_in_insertion_order() {
        let mut o = Outbox::new(10_000, 100);
        for (id, lane) in [
            (1, Lane::Telemetry),
            (2, Lane::Security),
            (3, Lane::Fire),
            (4, Lane::Security),
            (5, Lane::Health),
            (6, Lane::Fire),
        ] {
            assert!(o.insert(row(id, lane)).is_empty());
        }
        let mut pkid = 0;
        assert_eq!(drain(&mut o, &mut pkid), vec![3, 6, 2, 4, 5, 1]);
        assert_eq!(o.in_flight(), 6);
    }

    #[test]
    fn the_window_limits_what_is_in_flight_and_acks_free_it() {
        let mut o = Outbox::new(10_000, 2);
        for id in 1..=4 {
            o.insert(row(id, Lane::Security));
        }
        let mut pkid = 0;
        assert_eq!(drain(&mut o, &mut pkid), vec![1, 2]);
        assert_eq!(o.acked(1).map(|r| r.id), Some(1));
        assert_eq!(drain(&mut o, &mut pkid), vec![3]);
        assert_eq!(o.acked(99), None, "unknown packet id");
        assert_eq!(o.bytes(), 300);
    }

    #[test]
    fn a_fire_row_jumps_ahead_of_pending_security_rows() {
        let mut o = Outbox::new(10_000, 1);
        o.insert(row(1, Lane::Security));
        o.insert(row(2, Lane::Security));
        let mut pkid = 0;
        assert_eq!(drain(&mut o, &mut pkid), vec![1]);
        o.insert(row(3, Lane::Fire));
        o.acked(1);
        assert_eq!(drain(&mut o, &mut pkid), vec![3]);
        o.acked(2);
        assert_eq!(drain(&mut o, &mut pkid), vec![2]);
    }

    #[test]
    fn a_disconnect_makes_in_flight_rows_pending_again_in_their_order() {
        let mut o = Outbox::new(10_000, 10);
        for id in 1..=3 {
            o.insert(row(id, Lane::Security));
        }
        let mut pkid = 0;
        drain(&mut o, &mut pkid);
        o.acked(1);
        o.disconnected(u64::MAX);
        assert_eq!(o.in_flight(), 0);
        // The broker came back without a session: rows 2 and 3 go again, in order.
        assert_eq!(drain(&mut o, &mut pkid), vec![2, 3]);
    }

    #[test]
    fn a_refused_row_is_set_aside_at_once_when_lasting_else_at_the_fifth_refusal() {
        let mut o = Outbox::new(10_000, 10);
        for id in 1..=3 {
            o.insert(row(id, Lane::Security));
        }
        let mut pkid = 0;
        drain(&mut o, &mut pkid);
        // Row 2 (packet 2) is not authorized: set aside, the others go on.
        assert!(matches!(o.refused(2, true), Some(Blame::SetAside(r)) if r.id == 2));
        assert_eq!((o.in_flight(), o.len()), (2, 2));
        assert_eq!(o.refused(2, true), None, "an unknown packet id");
        // Row 3 meets passing refusals (quota): it goes again until the fifth.
        assert_eq!(o.refused(3, false), Some(Blame::Strike(3)));
        assert_eq!(o.refusals(3), 1);
        assert_eq!(o.acked(1).map(|r| r.id), Some(1));
        for n in 2..=MAX_REFUSALS {
            assert_eq!(drain(&mut o, &mut pkid), vec![3]);
            let blame = o.refused(pkid, false);
            if n < MAX_REFUSALS {
                assert_eq!(blame, Some(Blame::Strike(3)));
            } else {
                assert!(matches!(blame, Some(Blame::SetAside(r)) if r.id == 3));
            }
        }
        assert_eq!((o.in_flight(), o.len(), o.bytes()), (0, 0, 0));
    }

    #[test]
    fn eviction_takes_the_lowest_lane_oldest_first_and_fire_last() {
        // Room for 5 rows of 100 bytes.
        let mut o = Outbox::new(500, 10);
        o.insert(row(1, Lane::Fire));
        o.insert(row(2, Lane::Security));
        o.insert(row(3, Lane::Telemetry));
        o.insert(row(4, Lane::Health));
        o.insert(row(5, Lane::Telemetry));
        let ids = |v: Vec<Row>| v.iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(
            ids(o.insert(row(6, Lane::Fire))),
            vec![3],
            "oldest telemetry"
        );
        assert_eq!(ids(o.insert(row(7, Lane::Fire))), vec![5]);
        assert_eq!(ids(o.insert(row(8, Lane::Fire))), vec![4], "then health");
        assert_eq!(ids(o.insert(row(9, Lane::Fire))), vec![2], "then security");
        // Only fire is left: the oldest fire row goes, counted.
        assert_eq!(ids(o.insert(row(10, Lane::Fire))), vec![1]);
        assert_eq!(o.depth(Lane::Fire), 5);
        assert_eq!(
            LANES.map(|l| o.evicted(l)),
            [1, 1, 1, 2],
            "every eviction is counted per lane"
        );
    }

    #[test]
    fn evicting_an_in_flight_row_frees_its_window_slot_and_ignores_its_late_ack() {
        let mut o = Outbox::new(200, 10);
        o.insert(row(1, Lane::Telemetry));
        let mut pkid = 0;
        drain(&mut o, &mut pkid);
        o.insert(row(2, Lane::Security));
        assert_eq!(o.insert(row(3, Lane::Security)).len(), 1);
        assert_eq!(o.in_flight(), 0);
        assert_eq!(o.acked(1), None);
    }

    #[test]
    fn a_row_handed_but_not_yet_numbered_goes_back_on_disconnect_and_its_late_number_is_refused() {
        let mut o = Outbox::new(10_000, 10);
        o.insert(row(1, Lane::Fire));
        o.insert(row(2, Lane::Fire));
        assert!(o.handed(1));
        assert_eq!(o.next().map(|r| r.id), Some(2));
        assert_eq!(o.in_flight(), 1);
        o.disconnected(u64::MAX);
        assert!(
            !o.sent(1, 7, 0),
            "the old connection's packet id is refused"
        );
        assert_eq!(o.acked(7), None);
        assert_eq!(o.next().map(|r| r.id), Some(1), "row 1 goes again, first");
    }

    #[test]
    fn oldest_age_and_length_follow_the_rows() {
        let mut o = Outbox::new(10_000, 10);
        assert!(o.is_empty());
        o.insert(row(4, Lane::Health));
        o.insert(row(9, Lane::Health));
        assert_eq!(o.oldest_ms(Lane::Health), Some(4000));
        assert_eq!(o.oldest_ms(Lane::Fire), None);
        let mut pkid = 0;
        drain(&mut o, &mut pkid);
        o.acked(1);
        assert_eq!(o.oldest_ms(Lane::Health), Some(9000));
        assert_eq!(o.len(), 1);
    }

    #[test]
    fn a_row_that_ends_the_connection_goes_alone_and_is_set_aside_at_the_third_strike() {
        let mut o = Outbox::new(10_000, 10);
        for id in 1..=4 {
            o.insert(row(id, Lane::Security));
        }
        let mut pkid = 0;
        assert_eq!(drain(&mut o, &mut pkid), vec![1, 2, 3, 4]);
        o.acked(1);
        // The broker closes the connection on row 2 (sent at 0, closed at 40 ms).
        assert_eq!(
            o.disconnected(40),
            Blame::Strike(2),
            "the first strike only isolates"
        );
        assert_eq!(o.strikes(2), 1);
        assert_eq!(
            o.strikes(3),
            0,
            "only the oldest unacknowledged row is blamed"
        );
        // Row 2 goes alone: nothing beside it, and it waits for an empty window.
        assert_eq!(drain(&mut o, &mut pkid), vec![2]);
        assert_eq!(o.next(), None, "nothing goes beside a suspect");
        assert_eq!(o.disconnected(10), Blame::Strike(2));
        assert_eq!(drain(&mut o, &mut pkid), vec![2]);
        let Blame::SetAside(dead) = o.disconnected(10) else {
            panic!("the third strike sets it aside");
        };
        assert_eq!(dead.id, 2);
        assert_eq!(o.len(), 2);
        assert_eq!(o.bytes(), 200);
        // The lane moves on.
        assert_eq!(drain(&mut o, &mut pkid), vec![3, 4]);
    }

    #[test]
    fn a_connection_lost_long_after_the_send_blames_no_row_and_an_ack_clears_a_suspect() {
        let mut o = Outbox::new(10_000, 10);
        o.insert(row(1, Lane::Fire));
        o.insert(row(2, Lane::Fire));
        let mut pkid = 0;
        drain(&mut o, &mut pkid);
        // A keep-alive timeout: the connection ends seconds after the sends.
        assert_eq!(o.disconnected(STRIKE_WINDOW_MS + 1), Blame::None);
        assert_eq!(o.strikes(1), 0);
        assert_eq!(drain(&mut o, &mut pkid), vec![1, 2]);
        // A broker restart right after the send: one strike, row 1 goes alone, and is acked.
        assert_eq!(o.disconnected(1), Blame::Strike(1));
        assert_eq!(drain(&mut o, &mut pkid), vec![1]);
        assert!(o.acked(pkid).is_some());
        assert_eq!(drain(&mut o, &mut pkid), vec![2], "row 2 was never blamed");
        assert_eq!(o.strikes(2), 0);
    }

    #[test]
    fn a_suspect_in_a_lower_lane_waits_for_the_window_to_empty() {
        let mut o = Outbox::new(10_000, 10);
        o.insert(row(1, Lane::Health));
        let mut pkid = 0;
        drain(&mut o, &mut pkid);
        o.disconnected(0);
        o.insert(row(2, Lane::Fire));
        assert_eq!(
            drain(&mut o, &mut pkid),
            vec![2],
            "fire goes first; the suspect waits"
        );
        assert!(o.acked(pkid).is_some());
        assert_eq!(drain(&mut o, &mut pkid), vec![1]);
    }

    #[test]
    fn after_a_refusal_large_rows_get_one_try_alone() {
        let mut o = Outbox::new(10_000, 10);
        o.insert(row(1, Lane::Security));
        o.insert(Row {
            bytes: 40,
            ..row(2, Lane::Security)
        });
        o.insert(row(3, Lane::Security));
        o.suspect_above(50);
        assert_eq!(o.strikes(1), MAX_STRIKES - 1);
        assert_eq!(o.strikes(2), 0, "small rows are not suspects");
        let mut pkid = 0;
        assert_eq!(drain(&mut o, &mut pkid), vec![1], "alone");
        assert!(matches!(o.disconnected(5), Blame::SetAside(r) if r.id == 1));
        assert_eq!(drain(&mut o, &mut pkid), vec![2]);
        assert!(o.acked(pkid).is_some());
        assert_eq!(drain(&mut o, &mut pkid), vec![3]);
    }
}
