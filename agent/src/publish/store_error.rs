//! Why the outbox file cannot be used, and what kind of failure that is. Only a file that is
//! not a readable outbox ([`Failure::Corrupt`]) is ever moved aside: a full disk, an I/O error,
//! a read-only mount or wrong ownership keep the file (and its `seq`) and are reported as what
//! they are, so that the technician fixes the cause instead of losing the messages.

use std::path::PathBuf;

use rusqlite::ErrorCode;

use super::Message;

/// Why the outbox cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused.
    #[error("outbox {path}: {}{source}", Failure::of_sqlite(source).words())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// SQLite opened the file but its integrity check failed.
    #[error("outbox {path}: integrity check failed: {detail}")]
    Damaged {
        /// The database file.
        path: PathBuf,
        /// What `PRAGMA quick_check` said.
        detail: String,
    },
    /// The file could not be moved aside.
    #[error("outbox {path}: cannot move the unreadable file aside: {source}")]
    MoveAside {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl StoreError {
    /// What kind of failure this is.
    pub fn failure(&self) -> Failure {
        match self {
            StoreError::Sqlite { source, .. } => Failure::of_sqlite(source),
            StoreError::Damaged { .. } => Failure::Corrupt,
            StoreError::MoveAside { .. } => Failure::Io,
        }
    }
}

/// A failed append to the store.
#[derive(Debug)]
pub struct AppendError {
    /// What went wrong.
    pub error: StoreError,
    /// The messages, built even when the store failed before they could be (never lost here).
    pub messages: Vec<Message>,
}

/// The kinds of store failure an operator acts on differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The file is not a (readable) SQLite outbox: the only kind that is moved aside.
    Corrupt,
    /// The file system is full.
    Full,
    /// The file or its folder cannot be opened or written by this user (ownership, mode).
    Permission,
    /// The file or its file system is read-only.
    ReadOnly,
    /// The disk or file system failed (EIO and the like).
    Io,
    /// Anything else (a lock held by another process, a bug).
    Other,
}

impl Failure {
    /// The kind of a SQLite error.
    pub fn of_sqlite(e: &rusqlite::Error) -> Failure {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => Failure::Corrupt,
            Some(ErrorCode::DiskFull) => Failure::Full,
            Some(ErrorCode::PermissionDenied | ErrorCode::CannotOpen) => Failure::Permission,
            Some(ErrorCode::ReadOnly) => Failure::ReadOnly,
            Some(ErrorCode::SystemIoFailure) => Failure::Io,
            _ => Failure::Other,
        }
    }

    /// A prefix naming the kind in plain words ("" when SQLite's own words say enough).
    pub fn words(self) -> &'static str {
        match self {
            Failure::Corrupt => "not a readable outbox: ",
            Failure::Full => "the file system is full: ",
            Failure::Permission => {
                "cannot open or write it (check the owner and mode of the file and its folder): "
            }
            Failure::ReadOnly => "read-only (file mode or mount): ",
            Failure::Io => "I/O error (disk or file system): ",
            Failure::Other => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn only_a_damaged_file_counts_as_corrupt() {
        use rusqlite::ffi;
        let kinds = [
            (ffi::SQLITE_CORRUPT, Failure::Corrupt),
            (ffi::SQLITE_NOTADB, Failure::Corrupt),
            (ffi::SQLITE_FULL, Failure::Full),
            (ffi::SQLITE_CANTOPEN, Failure::Permission),
            (ffi::SQLITE_PERM, Failure::Permission),
            (ffi::SQLITE_READONLY, Failure::ReadOnly),
            (ffi::SQLITE_IOERR, Failure::Io),
            (ffi::SQLITE_IOERR_WRITE, Failure::Io),
            (ffi::SQLITE_BUSY, Failure::Other),
        ];
        for (code, want) in kinds {
            assert_eq!(Failure::of_sqlite(&sqlite(code)), want, "code {code}");
        }
        let e = StoreError::Sqlite {
            path: "/var/lib/vigil/outbox.db".into(),
            source: sqlite(rusqlite::ffi::SQLITE_FULL),
        };
        assert_eq!(e.failure(), Failure::Full);
        assert!(e.to_string().contains("the file system is full"), "{e}");
    }
}
