//! The durable outbox on disk: SQLite (bundled), WAL mode, `synchronous=FULL`. An incident
//! event gets its `seq` and is committed together with its snapshot in one transaction before
//! anything is published; a row is deleted only when the broker acknowledged it. The file is
//! readable with the stock `sqlite3` CLI:
//!
//! ```sql
//! CREATE TABLE outbox (
//!   id         INTEGER PRIMARY KEY AUTOINCREMENT, -- send order within a lane
//!   lane       INTEGER NOT NULL,  -- 0 fire/smoke, 1 security, 2 camera health, 3 telemetry
//!   seq        INTEGER,           -- the incident event's seq (NULL for other messages)
//!   topic      TEXT    NOT NULL,
//!   payload    BLOB    NOT NULL,
//!   retain     INTEGER NOT NULL,  -- 0 or 1
//!   created_ms INTEGER NOT NULL   -- Unix time in milliseconds
//! );
//! CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL); -- 'seq': high-water mark
//! CREATE TABLE dead_letter (         -- messages set aside: never sent again
//!   id, lane, seq, topic, payload, retain, created_ms, -- as in outbox
//!   dead_ms    INTEGER NOT NULL,  -- when it was set aside
//!   reason     TEXT    NOT NULL   -- why, in plain words
//! );
//! ```
//!
//! `open_incident` (`id`, `lane`, `topic`, `payload`: the open event as sent) holds every incident
//! whose `open` was stored and whose `close` was not, kept in the same transaction as the
//! events: after a crash or a power cut the next start closes them ([`Store::open_incidents`]).
//!
//! Dead letters are bounded: the newest [`DEAD_LETTER_ROWS`] rows and [`DEAD_LETTER_BYTES`]
//! bytes are kept.
//!
//! A file that is not a readable outbox is moved aside (`outbox.db.corrupt-<unix time>`) and a
//! new one started: an error in the log, never a crash loop.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};

use super::Message;
use super::outbox::{Lane, Row};
pub use super::store_error::{AppendError, Failure, StoreError};

/// Take the next `seq` inside transaction `tx` (committed with it): one above both the stored
/// mark and `given`, the last number handed out by this process (an event whose commit failed
/// still went out with its number, which is never given twice).
fn next_seq(tx: &rusqlite::Transaction<'_>, given: u64) -> rusqlite::Result<u64> {
    let last: i64 = tx
        .query_row("SELECT value FROM meta WHERE key = 'seq'", [], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    let next = (last.max(0) as u64).max(given) + 1;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('seq', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![next as i64],
    )?;
    Ok(next)
}

/// Keep `open_incident` in step with an incident event (its first message) inside `tx`.
fn track_open(
    tx: &rusqlite::Transaction<'_>,
    lane: Lane,
    messages: &[Message],
) -> rusqlite::Result<()> {
    let Some(first) = messages.first() else {
        return Ok(());
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&first.payload) else {
        return Ok(());
    };
    let (Some(id), Some(state)) = (v["id"].as_str(), v["state"].as_str()) else {
        return Ok(());
    };
    match state {
        "open" => tx
            .execute(
                "INSERT OR REPLACE INTO open_incident (id, lane, topic, payload) VALUES (?1, ?2, ?3, ?4)",
                params![id, lane as i64, first.topic, first.payload],
            )
            .map(|_| ()),
        "close" => tx
            .execute("DELETE FROM open_incident WHERE id = ?1", params![id])
            .map(|_| ()),
        _ => Ok(()),
    }
}

/// Insert `messages` as rows of `lane` inside transaction `tx`.
fn insert_all(
    tx: &rusqlite::Transaction<'_>,
    lane: Lane,
    seq: Option<u64>,
    messages: &[Message],
) -> rusqlite::Result<Vec<Row>> {
    let created_ms = now_ms();
    let mut rows = Vec::with_capacity(messages.len());
    for m in messages {
        tx.execute(
            "INSERT INTO outbox (lane, seq, topic, payload, retain, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                lane as i64,
                seq.map(|s| s as i64),
                m.topic,
                m.payload,
                m.retain as i64,
                created_ms
            ],
        )?;
        rows.push(Row {
            id: tx.last_insert_rowid() as u64,
            lane,
            bytes: m.payload.len() + m.topic.len(),
            created_ms: created_ms.max(0) as u64,
        });
    }
    Ok(rows)
}

/// The outbox database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// The last `seq` handed out by this process, stored or not.
    given: u64,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  lane       INTEGER NOT NULL,
  seq        INTEGER,
  topic      TEXT    NOT NULL,
  payload    BLOB    NOT NULL,
  retain     INTEGER NOT NULL,
  created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS open_incident (
  id      TEXT    PRIMARY KEY,
  lane    INTEGER NOT NULL,
  topic   TEXT    NOT NULL,
  payload BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letter (
  id         INTEGER PRIMARY KEY,
  lane       INTEGER NOT NULL,
  seq        INTEGER,
  topic      TEXT    NOT NULL,
  payload    BLOB    NOT NULL,
  retain     INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  dead_ms    INTEGER NOT NULL,
  reason     TEXT    NOT NULL
);
";

/// Dead letters kept at most (the oldest go first).
pub const DEAD_LETTER_ROWS: u64 = 500;

/// Bytes of dead letters kept at most (the oldest go first).
pub const DEAD_LETTER_BYTES: u64 = 64 << 20;

fn lane_of(n: i64) -> Lane {
    match n {
        0 => Lane::Fire,
        1 => Lane::Security,
        2 => Lane::Health,
        _ => Lane::Telemetry,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl Store {
    /// Open (or create) the outbox at `path`. A file that is not a readable outbox
    /// ([`Failure::Corrupt`]) is moved aside and a new one started; the path it was moved to is
    /// returned so the caller can report it. Any other failure (full disk, permissions, I/O)
    /// keeps the file and is returned.
    pub fn open(path: &Path) -> Result<(Store, Option<PathBuf>), StoreError> {
        match Store::try_open(path) {
            Ok(s) => Ok((s, None)),
            Err(first) if first.failure() != Failure::Corrupt => Err(first),
            Err(first) => {
                let aside =
                    PathBuf::from(format!("{}.corrupt-{}", path.display(), now_ms() / 1000));
                std::fs::rename(path, &aside).map_err(|source| StoreError::MoveAside {
                    path: path.to_path_buf(),
                    source,
                })?;
                for ext in ["-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
                }
                tracing::error!(
                    file = %path.display(),
                    moved_to = %aside.display(),
                    "the outbox was unreadable ({first}); moved aside, starting a new one"
                );
                Ok((Store::try_open(path)?, Some(aside)))
            }
        }
    }

    fn try_open(path: &Path) -> Result<Store, StoreError> {
        let err = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(err)?;
        if check != "ok" {
            return Err(StoreError::Damaged {
                path: path.to_path_buf(),
                detail: check,
            });
        }
        conn.execute_batch(SCHEMA).map_err(err)?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            given: 0,
        };
        store.given = store.last_seq()?;
        Ok(store)
    }

    /// An outbox in memory, for when the file cannot be used: the same behaviour, nothing
    /// durable. `label` names it in errors; `seq` continues above `given`.
    pub fn in_memory(label: &Path, given: u64) -> Result<Store, StoreError> {
        let err = |source| StoreError::Sqlite {
            path: label.to_path_buf(),
            source,
        };
        let conn = Connection::open_in_memory().map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Store {
            conn,
            path: label.to_path_buf(),
            given,
        })
    }

    /// The `seq` mark of the outbox file at `path`, read without writing anything (best effort:
    /// `None` when it cannot be read).
    pub fn peek_seq(path: &Path) -> Option<u64> {
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(0),
            Ok(m) if m.len() == 0 => return Some(0),
            _ => {}
        }
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ok()?;
        conn.query_row("SELECT value FROM meta WHERE key = 'seq'", [], |r| {
            r.get::<_, i64>(0)
        })
        .optional()
        .ok()
        .map(|v| v.unwrap_or(0).max(0) as u64)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// The last `seq` handed out (0: none yet).
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = 'seq'", [], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .map(|v| (v.unwrap_or(0).max(0) as u64).max(self.given))
            .map_err(|e| self.err(e))
    }

    /// Raise the `seq` high-water mark to at least `n` (importing an older state's number).
    pub fn raise_seq(&self, n: u64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES ('seq', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
                params![n as i64],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Store the messages `build` makes, in one transaction. With `numbered`, they are one
    /// incident event: `build` gets the next `seq`, which is committed with them. Returns the
    /// seq (if numbered) and the stored rows, in send order. On failure the messages are still
    /// built (numbered past every seq given out) and returned, so the caller can publish them
    /// without durability: a full disk never loses an event here.
    pub fn append(
        &mut self,
        lane: Lane,
        numbered: bool,
        build: impl FnOnce(Option<u64>) -> Vec<Message>,
    ) -> Result<(Option<u64>, Vec<Row>), AppendError> {
        let path = self.path.clone();
        let given = self.given;
        let mut build = Some(build);
        let mut made: Option<(Option<u64>, Vec<Message>)> = None;
        let stored = (|| {
            let tx = self.conn.transaction()?;
            let seq = if numbered {
                Some(next_seq(&tx, given)?)
            } else {
                None
            };
            let messages = build.take().map(|b| b(seq)).unwrap_or_default();
            let result = insert_all(&tx, lane, seq, &messages).and_then(|rows| {
                if numbered {
                    track_open(&tx, lane, &messages)?;
                }
                tx.commit().map(|()| rows)
            });
            made = Some((seq, messages));
            result
        })();
        if let Some((Some(seq), _)) = &made {
            self.given = self.given.max(*seq);
        }
        match stored {
            Ok(rows) => Ok((made.and_then(|(seq, _)| seq), rows)),
            Err(source) => {
                let messages = match (made, build.take()) {
                    (Some((_, messages)), _) => messages,
                    (None, Some(build)) => {
                        let seq = numbered.then(|| self.given + 1);
                        if let Some(seq) = seq {
                            self.given = seq;
                        }
                        build(seq)
                    }
                    (None, None) => Vec::new(),
                };
                Err(AppendError {
                    error: StoreError::Sqlite { path, source },
                    messages,
                })
            }
        }
    }

    /// Every stored row, in id order (to rebuild the state after a restart).
    pub fn rows(&self) -> Result<Vec<Row>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, lane, length(payload) + length(topic), created_ms FROM outbox ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let mapped = st
            .query_map([], |r| {
                Ok(Row {
                    id: r.get::<_, i64>(0)? as u64,
                    lane: lane_of(r.get(1)?),
                    bytes: r.get::<_, i64>(2)? as usize,
                    created_ms: r.get::<_, i64>(3)?.max(0) as u64,
                })
            })
            .map_err(|e| self.err(e))?;
        let rows: Result<Vec<Row>, rusqlite::Error> = mapped.collect();
        rows.map_err(|e| self.err(e))
    }

    /// The message stored as row `id`.
    pub fn message(&self, id: u64) -> Result<Option<Message>, StoreError> {
        self.conn
            .query_row(
                "SELECT topic, payload, retain FROM outbox WHERE id = ?1",
                params![id as i64],
                |r| {
                    Ok(Message {
                        topic: r.get(0)?,
                        payload: r.get(1)?,
                        retain: r.get::<_, i64>(2)? != 0,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Move row `id` to the dead letters with `reason`, in one transaction, and keep the dead
    /// letters within their bounds.
    pub fn set_aside(&mut self, id: u64, reason: &str) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute(
            "INSERT OR REPLACE INTO dead_letter
               (id, lane, seq, topic, payload, retain, created_ms, dead_ms, reason)
             SELECT id, lane, seq, topic, payload, retain, created_ms, ?2, ?3
               FROM outbox WHERE id = ?1",
            params![id as i64, now_ms(), reason],
        )
        .map_err(err)?;
        tx.execute("DELETE FROM outbox WHERE id = ?1", params![id as i64])
            .map_err(err)?;
        // Keep the newest rows within both bounds.
        tx.execute(
            "DELETE FROM dead_letter WHERE id IN (
               SELECT id FROM (
                 SELECT id, row_number() OVER (ORDER BY id DESC) AS n,
                        sum(length(payload) + length(topic)) OVER (ORDER BY id DESC) AS total
                   FROM dead_letter)
               WHERE n > ?1 OR total > ?2)",
            params![DEAD_LETTER_ROWS as i64, DEAD_LETTER_BYTES as i64],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Incidents opened and not closed, as (lane, topic, open payload), oldest first.
    pub fn open_incidents(&self) -> Result<Vec<(Lane, String, Vec<u8>)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT lane, topic, payload FROM open_incident ORDER BY rowid")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    lane_of(r.get(0)?),
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let rows: Result<Vec<_>, _> = rows.collect();
        rows.map_err(|e| self.err(e))
    }

    /// Track `open` events (lane, topic, payload, as [`Store::open_incidents`] gives them) as
    /// open here too: incidents opened while another store was in use.
    pub fn track_opens(&mut self, open: &[(Lane, String, Vec<u8>)]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        for (lane, topic, payload) in open {
            let m = Message {
                topic: topic.clone(),
                payload: payload.clone(),
                retain: false,
            };
            track_open(&tx, *lane, std::slice::from_ref(&m)).map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Dead letters stored.
    pub fn dead_letters(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM dead_letter", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n.max(0) as u64)
            .map_err(|e| self.err(e))
    }

    /// Delete row `id` (acknowledged or evicted).
    pub fn delete(&self, id: u64) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM outbox WHERE id = ?1", params![id as i64])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vigil-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::create_dir_all(&d);
        d
    }

    fn msg(topic: &str, body: &str) -> Message {
        Message {
            topic: topic.into(),
            payload: body.as_bytes().to_vec(),
            retain: false,
        }
    }

    #[test]
    fn incidents_get_consecutive_seqs_committed_with_their_rows_and_survive_reopening() {
        let d = dir("reopen");
        let path = d.join("outbox.db");
        let (mut s, aside) = Store::open(&path).expect("open");
        assert!(aside.is_none());
        let (seq, rows) = s
            .append(Lane::Security, true, |seq| {
                vec![
                    msg("t/incident", &format!("seq {}", seq.unwrap_or(0))),
                    msg("t/snapshot", "jpeg"),
                ]
            })
            .expect("append");
        assert_eq!(seq, Some(1));
        assert_eq!(rows.len(), 2);
        assert!(
            rows[0].id < rows[1].id,
            "the snapshot goes after its incident"
        );
        let (seq2, _) = s
            .append(Lane::Fire, true, |_| vec![msg("t/fire", "x")])
            .expect("append");
        assert_eq!(seq2, Some(2));
        let (none, _) = s
            .append(Lane::Telemetry, false, |seq| {
                assert!(seq.is_none());
                vec![msg("t/health", "h")]
            })
            .expect("append");
        assert_eq!(none, None);
        s.delete(rows[0].id).expect("delete");
        s.raise_seq(1).expect("a lower mark changes nothing");
        drop(s);
        let (s, _) = Store::open(&path).expect("reopen");
        assert_eq!(s.last_seq().expect("seq"), 2);
        let ids: Vec<(u64, Lane)> = s
            .rows()
            .expect("rows")
            .iter()
            .map(|r| (r.id, r.lane))
            .collect();
        assert_eq!(
            ids,
            vec![(2, Lane::Security), (3, Lane::Fire), (4, Lane::Telemetry)]
        );
        let m = s.message(2).expect("read").expect("row 2");
        assert_eq!(
            (m.topic.as_str(), m.payload.as_slice()),
            ("t/snapshot", &b"jpeg"[..])
        );
        assert!(s.message(1).expect("read").is_none(), "deleted");
        // The stock sqlite3 CLI (installed by scripts/install-deps.sh) reads it while open.
        let out = std::process::Command::new("sqlite3")
            .arg(&path)
            .arg("SELECT lane, seq, topic FROM outbox ORDER BY id")
            .output()
            .expect("the sqlite3 command (apt install sqlite3)");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "1|1|t/snapshot\n0|2|t/fire\n3||t/health\n"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_failed_commit_still_gives_the_messages_and_never_reuses_their_seq() {
        let d = dir("refused");
        let path = d.join("outbox.db");
        let (mut s, _) = Store::open(&path).expect("open");
        s.append(Lane::Fire, true, |_| vec![msg("t", "1")])
            .expect("append");
        // Writes refused from here on, as on a full disk.
        s.conn
            .pragma_update(None, "query_only", true)
            .expect("pragma");
        let e = s
            .append(Lane::Fire, true, |seq| {
                vec![msg("t", &seq.unwrap_or(0).to_string())]
            })
            .expect_err("refused");
        assert_eq!(e.messages.len(), 1, "the messages come back");
        assert_eq!(e.messages[0].payload, b"2");
        assert_eq!(e.error.failure(), Failure::ReadOnly);
        s.conn
            .pragma_update(None, "query_only", false)
            .expect("pragma");
        let (seq, _) = s
            .append(Lane::Fire, true, |_| vec![msg("t", "3")])
            .expect("append again");
        assert_eq!(
            seq,
            Some(3),
            "seq 2 went out unstored: it is not given twice"
        );
        drop(s);
        assert_eq!(Store::peek_seq(&path), Some(3));
        let m = Store::in_memory(&path, 3).expect("memory");
        assert_eq!(m.last_seq().expect("seq"), 3);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_file_it_may_not_open_is_an_error_and_stays_where_it_is() {
        let d = dir("perm");
        let path = d.join("outbox.db");
        drop(Store::open(&path).expect("create"));
        // A folder where the file should be: SQLite cannot open it, and it is not corrupt.
        let blocked = d.join("blocked.db");
        std::fs::create_dir_all(&blocked).expect("mkdir");
        let e = Store::open(&blocked).expect_err("cannot open a folder");
        assert_ne!(e.failure(), Failure::Corrupt, "{e}");
        assert!(blocked.is_dir(), "nothing moved aside");
        let leftovers: Vec<_> = std::fs::read_dir(&d)
            .expect("ls")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("corrupt"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn an_unreadable_file_is_moved_aside_and_a_new_outbox_started() {
        let d = dir("corrupt");
        let path = d.join("outbox.db");
        std::fs::write(&path, vec![0xAB; 8192]).expect("write garbage");
        let (mut s, aside) = Store::open(&path).expect("open");
        let aside = aside.expect("moved aside");
        assert!(aside.exists() && aside.to_string_lossy().contains(".corrupt-"));
        let (seq, _) = s
            .append(Lane::Security, true, |_| vec![msg("t", "x")])
            .expect("append to the new outbox");
        assert_eq!(seq, Some(1));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_row_set_aside_leaves_the_outbox_for_the_dead_letters_which_stay_bounded() {
        let d = dir("dead");
        let path = d.join("outbox.db");
        let (mut s, _) = Store::open(&path).expect("open");
        let (_, rows) = s
            .append(Lane::Security, true, |_| {
                vec![msg("t/incident", "i"), msg("t/snapshot", "jpeg")]
            })
            .expect("append");
        s.set_aside(rows[1].id, "too large").expect("set aside");
        assert_eq!(s.rows().expect("rows").len(), 1);
        assert!(s.message(rows[1].id).expect("read").is_none());
        assert_eq!(s.dead_letters().expect("count"), 1);
        let out = std::process::Command::new("sqlite3")
            .arg(&path)
            .arg("SELECT lane, seq, topic, reason FROM dead_letter")
            .output()
            .expect("sqlite3");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "1|1|t/snapshot|too large\n"
        );
        for _ in 0..DEAD_LETTER_ROWS + 5 {
            let (_, rows) = s
                .append(Lane::Telemetry, false, |_| vec![msg("t/h", "x")])
                .expect("append");
            s.set_aside(rows[0].id, "refused").expect("set aside");
        }
        assert_eq!(s.dead_letters().expect("count"), DEAD_LETTER_ROWS);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn incidents_opened_and_not_closed_are_remembered_with_their_events() {
        let d = dir("open");
        let path = d.join("outbox.db");
        let (mut s, _) = Store::open(&path).expect("open");
        let event = |id: &str, state: &str| {
            let body = format!(r#"{{"id":"{id}","state":"{state}","type":"intrusion"}}"#);
            move |_: Option<u64>| vec![msg("t/incidents/cam", &body), msg("t/snapshot", "jpeg")]
        };
        s.append(Lane::Security, true, event("a", "open"))
            .expect("a");
        s.append(Lane::Fire, true, event("b", "open")).expect("b");
        s.append(Lane::Security, true, event("a", "update"))
            .expect("a");
        s.append(Lane::Security, true, event("a", "close"))
            .expect("a");
        s.append(Lane::Telemetry, false, |_| vec![msg("t/health", "{}")])
            .expect("health");
        drop(s);
        let (s, _) = Store::open(&path).expect("reopen");
        let open = s.open_incidents().expect("open incidents");
        assert_eq!(open.len(), 1);
        assert_eq!(
            (open[0].0, open[0].1.as_str()),
            (Lane::Fire, "t/incidents/cam")
        );
        assert!(String::from_utf8_lossy(&open[0].2).contains(r#""id":"b""#));
        let _ = std::fs::remove_dir_all(&d);
    }
}
