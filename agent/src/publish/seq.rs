//! The per-device incident sequence number, persisted so that it never restarts: `seq` grows by
//! exactly one per incident event across restarts, and a consumer sees a lost event as a gap.
//!
//! The high-water mark lives in `{state_dir}/seq` (decimal text), written to a temporary file,
//! fsync'd and renamed over the old one before the number is used, so a crash or power cut
//! can never hand out a number twice. An unreadable file is moved aside with an error in the
//! log and numbering restarts at 1 (a visible reset, never a crash loop).

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The sequence number store.
#[derive(Debug)]
pub struct SeqStore {
    path: Option<PathBuf>,
    last: u64,
    failing: bool,
}

impl SeqStore {
    /// Open (or create) the store in `dir`.
    pub fn open(dir: &Path) -> std::io::Result<SeqStore> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("seq");
        let last = match std::fs::read_to_string(&path) {
            Ok(text) => match text.trim().parse::<u64>() {
                Ok(n) => n,
                Err(_) => {
                    let aside = dir.join(format!(
                        "seq.corrupt-{}",
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map(|d| d.as_secs())
                            .unwrap_or_default()
                    ));
                    std::fs::rename(&path, &aside)?;
                    tracing::error!(
                        file = %path.display(),
                        moved_to = %aside.display(),
                        "the incident sequence file is unreadable; moved aside, numbering restarts at 1"
                    );
                    0
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        let store = SeqStore {
            path: Some(path),
            last,
            failing: false,
        };
        // Prove now that the folder is writable, not at the first incident.
        store.persist(last)?;
        Ok(store)
    }

    /// A store that forgets on exit (tests, replay).
    pub fn in_memory() -> SeqStore {
        SeqStore {
            path: None,
            last: 0,
            failing: false,
        }
    }

    /// The last number handed out (0: none yet).
    pub fn last(&self) -> u64 {
        self.last
    }

    /// The next number, persisted before it is returned. A write failure is logged (once per
    /// failure streak) and the number still used: incidents are never held back by a disk.
    pub fn take_next(&mut self) -> u64 {
        let n = self.last + 1;
        match self.persist(n) {
            Ok(()) => self.failing = false,
            Err(e) => {
                if !self.failing {
                    tracing::error!("cannot persist the incident sequence number {n}: {e}");
                }
                self.failing = true;
            }
        }
        self.last = n;
        n
    }

    fn persist(&self, n: u64) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "{n}")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vigil-seq-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn numbers_continue_across_reopen() {
        let d = dir("reopen");
        let mut s = SeqStore::open(&d).expect("open");
        assert_eq!((s.take_next(), s.take_next(), s.take_next()), (1, 2, 3));
        drop(s);
        let mut s = SeqStore::open(&d).expect("reopen");
        assert_eq!(s.last(), 3);
        assert_eq!(s.take_next(), 4);
        assert_eq!(
            std::fs::read_to_string(d.join("seq")).expect("file").trim(),
            "4"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_not_fatal() {
        let d = dir("corrupt");
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join("seq"), "garbage\n").expect("write");
        let mut s = SeqStore::open(&d).expect("open");
        assert_eq!(s.take_next(), 1);
        let aside = std::fs::read_dir(&d)
            .expect("list")
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with("seq.corrupt-"));
        assert!(aside);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn an_unwritable_folder_is_refused_at_open() {
        let err = SeqStore::open(Path::new("/proc/vigil-cannot-be-here")).unwrap_err();
        assert!(!err.to_string().is_empty());
    }
}
