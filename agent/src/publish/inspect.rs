//! A read-only look into an outbox file, for `vigil outbox` and the diagnostics socket: works
//! while the agent runs (SQLite WAL readers never block the writer) and while it is stopped.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, params};
use serde::Serialize;
use serde_json::json;

use super::durable::lane_name;
use super::outbox::{LANES, Lane};

/// Why the outbox cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// No file there.
    #[error(
        "no outbox at {0} (the agent has not run with this storage.state_dir yet, or the path is wrong)"
    )]
    Missing(PathBuf),
    /// SQLite refused.
    #[error("cannot read the outbox {path}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
}

/// One stored message, without its payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowInfo {
    /// Row id (delivery order within a lane).
    pub id: u64,
    /// Lane name.
    pub lane: &'static str,
    /// The incident's `seq`, for incident events and their snapshots.
    pub seq: Option<u64>,
    /// MQTT topic.
    pub topic: String,
    /// Payload bytes.
    pub bytes: u64,
    /// Retained on the broker.
    pub retain: bool,
    /// When it was stored (Unix milliseconds).
    pub created_ms: u64,
}

/// One dead letter (a message set aside, never sent again), without its payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadInfo {
    /// The row as it was in the outbox.
    #[serde(flatten)]
    pub row: RowInfo,
    /// When it was set aside (Unix milliseconds).
    pub dead_ms: u64,
    /// Why.
    pub reason: String,
}

/// Per-lane figures of the file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LaneStats {
    /// Lane name.
    pub lane: &'static str,
    /// Rows waiting.
    pub rows: u64,
    /// Their bytes (topic + payload).
    pub bytes: u64,
    /// When the oldest was stored (Unix milliseconds).
    pub oldest_ms: Option<u64>,
}

/// The outbox file, opened read-only.
#[derive(Debug)]
pub struct Inspect {
    conn: Connection,
    path: PathBuf,
}

impl Inspect {
    /// Open `path` read-only.
    pub fn open(path: &Path) -> Result<Inspect, InspectError> {
        if !path.exists() {
            return Err(InspectError::Missing(path.to_path_buf()));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| InspectError::Sqlite {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Inspect {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn err(&self, source: rusqlite::Error) -> InspectError {
        InspectError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Rows, bytes and oldest row of each lane, fire first.
    pub fn stats(&self) -> Result<Vec<LaneStats>, InspectError> {
        let mut out = Vec::with_capacity(LANES.len());
        for lane in LANES {
            let (rows, bytes, oldest): (i64, i64, Option<i64>) = self
                .conn
                .query_row(
                    "SELECT count(*), coalesce(sum(length(payload) + length(topic)), 0), min(created_ms)
                     FROM outbox WHERE lane = ?1",
                    params![lane as i64],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .map_err(|e| self.err(e))?;
            out.push(LaneStats {
                lane: lane_name(lane),
                rows: rows.max(0) as u64,
                bytes: bytes.max(0) as u64,
                oldest_ms: oldest.map(|t| t.max(0) as u64),
            });
        }
        Ok(out)
    }

    /// The last incident `seq` handed out.
    pub fn last_seq(&self) -> Result<u64, InspectError> {
        use rusqlite::OptionalExtension;
        let v: Option<i64> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'seq'", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(v.unwrap_or(0).max(0) as u64)
    }

    /// Up to `limit` rows in delivery order (lane by lane, fire first; by id within a lane),
    /// each with its payload when `payloads` (else an empty one).
    pub fn rows(
        &self,
        limit: usize,
        payloads: bool,
    ) -> Result<Vec<(RowInfo, Vec<u8>)>, InspectError> {
        let payload = if payloads { "payload" } else { "x''" };
        let sql = format!(
            "SELECT id, lane, seq, topic, length(payload), retain, created_ms, {payload}
             FROM outbox ORDER BY lane, id LIMIT ?1"
        );
        let mut st = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let mapped = st
            .query_map(params![limit.min(i64::MAX as usize) as i64], row_info)
            .map_err(|e| self.err(e))?;
        let rows: Result<Vec<_>, _> = mapped.collect();
        rows.map_err(|e| self.err(e))
    }
}

impl Inspect {
    /// Up to `limit` dead letters, newest first, each with its payload when `payloads`. A file
    /// from before dead letters existed has none.
    pub fn dead(
        &self,
        limit: usize,
        payloads: bool,
    ) -> Result<Vec<(DeadInfo, Vec<u8>)>, InspectError> {
        let exists: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'dead_letter'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        if exists == 0 {
            return Ok(Vec::new());
        }
        let payload = if payloads { "payload" } else { "x''" };
        let sql = format!(
            "SELECT id, lane, seq, topic, length(payload), retain, created_ms, {payload}, dead_ms, reason
             FROM dead_letter ORDER BY id DESC LIMIT ?1"
        );
        let mut st = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let mapped = st
            .query_map(params![limit.min(i64::MAX as usize) as i64], |r| {
                let (row, payload) = row_info(r)?;
                Ok((
                    DeadInfo {
                        row,
                        dead_ms: r.get::<_, i64>(8)?.max(0) as u64,
                        reason: r.get(9)?,
                    },
                    payload,
                ))
            })
            .map_err(|e| self.err(e))?;
        let rows: Result<Vec<_>, _> = mapped.collect();
        rows.map_err(|e| self.err(e))
    }
}

/// Columns 0–7 of an outbox or dead-letter query: the row and its payload.
fn row_info(r: &rusqlite::Row<'_>) -> rusqlite::Result<(RowInfo, Vec<u8>)> {
    let lane: i64 = r.get(1)?;
    Ok((
        RowInfo {
            id: r.get::<_, i64>(0)?.max(0) as u64,
            lane: lane_name(lane_of(lane)),
            seq: r.get::<_, Option<i64>>(2)?.map(|s| s.max(0) as u64),
            topic: r.get(3)?,
            bytes: r.get::<_, i64>(4)?.max(0) as u64,
            retain: r.get::<_, i64>(5)? != 0,
            created_ms: r.get::<_, i64>(6)?.max(0) as u64,
        },
        r.get::<_, Vec<u8>>(7)?,
    ))
}

fn lane_of(n: i64) -> Lane {
    LANES
        .get(usize::try_from(n).unwrap_or(LANES.len() - 1))
        .copied()
        .unwrap_or(Lane::Telemetry)
}

/// A row as one export line: its fields and the payload, as JSON when it is JSON (incident
/// events, status, health), else base64 (snapshots).
pub fn export_line(row: &RowInfo, payload: &[u8]) -> serde_json::Value {
    let mut v = json!(row);
    let body = serde_json::from_slice::<serde_json::Value>(payload)
        .map(|j| ("payload", j))
        .unwrap_or_else(|_| {
            use base64::Engine;
            (
                "payload_base64",
                json!(base64::engine::general_purpose::STANDARD.encode(payload)),
            )
        });
    if let Some(o) = v.as_object_mut() {
        o.insert(body.0.into(), body.1);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::Message;
    use crate::publish::store::Store;

    #[test]
    fn a_stored_outbox_reads_back_in_delivery_order() {
        let dir = std::env::temp_dir().join(format!("vigil-inspect-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("outbox.db");
        assert!(matches!(
            Inspect::open(&path),
            Err(InspectError::Missing(_))
        ));
        let (mut store, _) = Store::open(&path).expect("store");
        let msg = |t: &str, p: &[u8]| Message {
            topic: t.into(),
            payload: p.to_vec(),
            retain: false,
        };
        store
            .append(Lane::Telemetry, false, |_| vec![msg("h", b"{\"x\":1}")])
            .expect("health");
        store
            .append(Lane::Fire, true, |_| {
                vec![msg("i", b"{\"type\":\"fire\"}"), msg("s", &[0xFF, 0xD8])]
            })
            .expect("fire");
        let view = Inspect::open(&path).expect("open read-only");
        let stats = view.stats().expect("stats");
        assert_eq!((stats[0].lane, stats[0].rows), ("fire", 2));
        assert_eq!((stats[3].lane, stats[3].rows), ("telemetry", 1));
        assert_eq!(stats[1].rows + stats[2].rows, 0);
        assert_eq!(view.last_seq().expect("seq"), 1);
        let rows = view.rows(10, true).expect("rows");
        let order: Vec<&str> = rows.iter().map(|(r, _)| r.topic.as_str()).collect();
        assert_eq!(order, ["i", "s", "h"], "fire lane first");
        assert_eq!(rows[0].0.seq, Some(1));
        assert_eq!(
            export_line(&rows[0].0, &rows[0].1)["payload"]["type"],
            "fire"
        );
        assert_eq!(
            export_line(&rows[1].0, &rows[1].1)["payload_base64"],
            "/9g="
        );
        assert_eq!(view.rows(1, false).expect("limited")[0].1, b"");
        assert!(view.dead(10, false).expect("none yet").is_empty());
        store
            .set_aside(rows[1].0.id, "too large")
            .expect("set aside");
        let dead = view.dead(10, true).expect("dead letters");
        assert_eq!(dead.len(), 1);
        assert_eq!(
            (dead[0].0.row.topic.as_str(), dead[0].0.reason.as_str()),
            ("s", "too large")
        );
        assert_eq!(dead[0].1, [0xFF, 0xD8]);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
