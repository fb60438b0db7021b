//! The outbox when its file cannot be used (full disk, I/O error, wrong owner, read-only): the
//! agent still starts and publishes, from an outbox in memory bounded by [`MEMORY_BYTES`], and
//! says so (health `outbox.store_error`, `outbox.not_durable`; `vigil status`; ERROR logs).
//! `seq` continues above the file's mark when the file can still be read. Once the memory
//! outbox is empty, the file is tried again (every [`RETRY`]); when it opens, the agent goes
//! back to it: the file's own waiting rows are reloaded, its mark raised above every `seq`
//! given in memory, the incidents it held open closed and those opened meanwhile carried over.
//! Only a corrupt file is ever moved aside ([`super::store::Store::open`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::durable::{Durable, LATE_ORPHAN_REASON};
use super::store::{Failure, Store, StoreError};

/// Bytes the memory outbox holds at most (or `outbox.max_bytes` if smaller).
pub const MEMORY_BYTES: usize = 16 << 20;

/// How often the file is tried again while the outbox is in memory.
pub const RETRY: Duration = Duration::from_secs(30);

impl Durable {
    /// [`Durable::open`], or an outbox in memory when the file cannot be used for any reason
    /// but corruption (which [`Store::open`] deals with by moving the file aside). Returns the
    /// outbox and where a corrupt file was moved.
    pub fn open_or_memory(
        path: &Path,
        max_bytes: usize,
        max_in_flight: usize,
    ) -> Result<(Durable, Option<PathBuf>), StoreError> {
        match Durable::open(path, max_bytes, max_in_flight) {
            Ok(opened) => Ok(opened),
            Err(e) if e.failure() == Failure::Corrupt => Err(e),
            Err(e) => {
                let seq = Store::peek_seq(path);
                tracing::error!(
                    outbox = %path.display(),
                    "cannot use the outbox file ({e}); messages are kept in memory only ({} at most) until it can be used: a restart or power cut before delivery loses them{}",
                    MEMORY_BYTES.min(max_bytes),
                    if seq.is_none() { "; its seq could not be read, so numbers start again from 1" } else { "" }
                );
                let store = Store::in_memory(path, seq.unwrap_or(0))?;
                let mut d = Durable::with_store(store, MEMORY_BYTES.min(max_bytes), max_in_flight)?;
                d.memory = Some(e.to_string());
                d.file_max_bytes = max_bytes;
                d.update_gauge();
                Ok((d, None))
            }
        }
    }

    /// Whether the outbox is in memory (its file cannot be used).
    pub fn in_memory(&self) -> bool {
        self.memory.is_some()
    }

    /// While in memory and empty, try the file again. Returns true when the outbox went back
    /// to the file.
    pub fn retry_file(&mut self) -> bool {
        if self.memory.is_none() || !self.is_empty() {
            return false;
        }
        let path = self.store.path().to_path_buf();
        let file = match Store::open(&path) {
            Ok((file, _)) => file,
            Err(e) => {
                self.memory = Some(e.to_string());
                self.update_gauge();
                return false;
            }
        };
        match self.adopt(file) {
            Ok(closed) => {
                tracing::info!(
                    outbox = %path.display(),
                    closed_left_open = closed,
                    "the outbox file can be used again: messages are durable again"
                );
                true
            }
            Err(e) => {
                tracing::error!("cannot go back to the outbox file: {e}");
                self.memory = Some(e.to_string());
                self.update_gauge();
                false
            }
        }
    }

    /// Switch to `file`: carry `seq` and the open incidents over, reload its rows. On an error
    /// before the switch the outbox stays in memory; after it, the file is kept and what could
    /// not be carried over is logged.
    fn adopt(&mut self, file: Store) -> Result<usize, StoreError> {
        file.raise_seq(self.store.last_seq()?)?;
        let opened_here = self.store.open_incidents()?;
        let memory = std::mem::replace(&mut self.store, file);
        let fresh = super::outbox::Outbox::new(self.file_max_bytes, self.state.max_in_flight());
        let memory_state = std::mem::replace(&mut self.state, fresh);
        if let Err(e) = self.load() {
            self.store = memory;
            self.state = memory_state;
            return Err(e);
        }
        self.memory = None;
        let closed = self.close_orphans(LATE_ORPHAN_REASON).unwrap_or_else(|e| {
            tracing::error!("cannot close the incidents the outbox file held open: {e}");
            0
        });
        if let Err(e) = self.store.track_opens(&opened_here) {
            tracing::error!(
                "cannot record in the outbox file the incidents opened while it was unusable: {e}"
            );
        }
        self.update_gauge();
        Ok(closed)
    }
}

#[cfg(test)]
mod tests {
    use super::super::outbox::Lane;
    use super::super::{Message, Outgoing};
    use super::*;

    fn open_event(id: &str) -> Outgoing {
        let id = id.to_string();
        Outgoing::Incident {
            lane: Lane::Fire,
            build: Box::new(move |seq| {
                vec![Message {
                    topic: "v/incidents/cam".into(),
                    payload: format!(r#"{{"id":"{id}","seq":{seq},"state":"open"}}"#).into_bytes(),
                    retain: false,
                }]
            }),
        }
    }

    fn deliver_all(o: &mut Durable) {
        let mut pkid = 1;
        while let Some((row, _)) = o.next_message() {
            o.handed(row);
            o.sent(row, pkid);
            assert!(o.acked(pkid));
            pkid += 1;
        }
    }

    #[test]
    fn an_unusable_file_runs_in_memory_and_goes_back_to_the_file_once_it_can() {
        let d = std::env::temp_dir().join(format!("vigil-memory-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        // A file where the state folder should be: the outbox file cannot be opened.
        let blocked = d.join("state");
        std::fs::write(&blocked, b"not a folder").expect("write");
        let path = blocked.join("outbox.db");
        let (mut o, aside) = Durable::open_or_memory(&path, 1 << 20, 8).expect("in memory");
        assert!(aside.is_none() && o.in_memory());
        assert!(o.gauge().get().store_error.is_some());
        assert_eq!(o.enqueue(open_event("a")).expect("kept"), Some(1));
        assert_eq!(o.gauge().get().not_durable, 1);
        assert!(!o.retry_file(), "not while messages wait");
        deliver_all(&mut o);
        assert!(!o.retry_file(), "the file still cannot be used");
        std::fs::remove_file(&blocked).expect("rm");
        std::fs::create_dir_all(&blocked).expect("mkdir");
        assert!(o.retry_file(), "back to the file");
        assert!(!o.in_memory() && o.gauge().get().store_error.is_none());
        assert_eq!(o.enqueue(open_event("b")).expect("stored"), Some(2));
        drop(o);
        let file = Store::open(&path).expect("reopen").0;
        assert_eq!(file.last_seq().expect("seq"), 2);
        assert_eq!(
            file.open_incidents().expect("open").len(),
            2,
            "the incident opened in memory is tracked in the file"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
