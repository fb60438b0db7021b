//! The results already given, by request id (`commands.db` in the state folder, SQLite): a
//! request that arrives again (MQTT redelivers at least once; a centre may retry) gets the
//! stored result back, byte for byte, without the command acting twice. Results older than
//! twice `commands.max_age_s` are pruned: a request that old is refused as expired anyway.
//! When the file cannot be used the ledger lives in memory (bounded) and says so at start.

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

/// Results kept in memory when the file cannot be used.
const MEMORY_ROWS: usize = 10_000;

/// Stored results by request id.
pub enum Ledger {
    /// In `commands.db`.
    File(Connection),
    /// In memory: `(id, result, at_ms)`, oldest first.
    Memory(VecDeque<(String, Vec<u8>, u64)>),
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ledger::File(_) => f.write_str("Ledger::File"),
            Ledger::Memory(rows) => write!(f, "Ledger::Memory({})", rows.len()),
        }
    }
}

impl Ledger {
    /// Open (or create) `path`; in memory, with an ERROR, when it cannot be used.
    pub fn open(path: &Path) -> Ledger {
        match open_file(path) {
            Ok(c) => Ledger::File(c),
            Err(e) => {
                tracing::error!(
                    path = %path.display(),
                    "cannot use the command ledger ({e}); results are kept in memory, so a request repeated after a restart acts again"
                );
                Ledger::Memory(VecDeque::new())
            }
        }
    }

    /// The result given to request `id`, if any.
    pub fn get(&self, id: &str) -> Option<Vec<u8>> {
        match self {
            Ledger::File(c) => c
                .query_row("SELECT result FROM results WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()
                .unwrap_or_else(|e| {
                    tracing::error!("cannot read the command ledger: {e}");
                    None
                }),
            Ledger::Memory(rows) => rows
                .iter()
                .find(|(i, _, _)| i == id)
                .map(|(_, r, _)| r.clone()),
        }
    }

    /// Forget the result of request `id`.
    pub fn forget(&mut self, id: &str) {
        match self {
            Ledger::File(c) => {
                if let Err(e) = c.execute("DELETE FROM results WHERE id = ?1", [id]) {
                    tracing::error!("cannot forget a command result: {e}");
                }
            }
            Ledger::Memory(rows) => rows.retain(|(i, _, _)| i != id),
        }
    }

    /// Keep `result` for request `id` at `now_ms`, and forget results older than `keep`.
    pub fn put(&mut self, id: &str, result: &[u8], now_ms: u64, keep: Duration) {
        let oldest = now_ms.saturating_sub(u64::try_from(keep.as_millis()).unwrap_or(u64::MAX));
        match self {
            Ledger::File(c) => {
                let done = c
                    .execute(
                        "INSERT OR REPLACE INTO results (id, result, at_ms) VALUES (?1, ?2, ?3)",
                        params![id, result, now_ms],
                    )
                    .and_then(|_| c.execute("DELETE FROM results WHERE at_ms < ?1", [oldest]));
                if let Err(e) = done {
                    tracing::error!("cannot store a command result: {e}");
                }
            }
            Ledger::Memory(rows) => {
                rows.retain(|(_, _, at)| *at >= oldest);
                if rows.len() >= MEMORY_ROWS {
                    rows.pop_front();
                }
                rows.push_back((id.to_string(), result.to_vec(), now_ms));
            }
        }
    }
}

fn open_file(path: &Path) -> rusqlite::Result<Connection> {
    let c = Connection::open(path)?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "FULL")?;
    c.busy_timeout(Duration::from_secs(5))?;
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS results (
             id TEXT PRIMARY KEY,
             result BLOB NOT NULL,
             at_ms INTEGER NOT NULL
         );
         CREATE INDEX IF NOT EXISTS results_at ON results (at_ms);",
    )?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_is_kept_across_reopening_and_pruned_when_old() {
        let dir = std::env::temp_dir().join(format!("vigil-ledger-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("commands.db");
        let keep = Duration::from_secs(600);
        {
            let mut l = Ledger::open(&path);
            assert!(matches!(l, Ledger::File(_)));
            l.put("a", b"first", 1_000, keep);
        }
        let mut l = Ledger::open(&path);
        assert_eq!(l.get("a").as_deref(), Some(&b"first"[..]));
        assert_eq!(l.get("b"), None);
        l.put("b", b"second", 1_000 + 601_000, keep);
        assert_eq!(l.get("a"), None, "pruned");
        assert_eq!(l.get("b").as_deref(), Some(&b"second"[..]));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unusable_file_leaves_a_bounded_ledger_in_memory() {
        let mut l = Ledger::open(Path::new("/proc/vigil/no/such/commands.db"));
        assert!(matches!(l, Ledger::Memory(_)));
        for i in 0..(MEMORY_ROWS as u64 + 5) {
            l.put(&i.to_string(), b"r", i, Duration::from_secs(3600));
        }
        assert_eq!(l.get("0"), None, "the oldest went first");
        assert!(l.get(&(MEMORY_ROWS as u64 + 4).to_string()).is_some());
    }
}
