//! The CLI's side of the diagnostics socket (blocking; one request at a time or one stream).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// Why a request did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing at the path.
    #[error(
        "no agent socket at {0}: is vigil running (systemctl status vigil)? Is diag.socket in its configuration another path (use --config or --socket)?"
    )]
    Missing(PathBuf),
    /// The file is there but nobody answers.
    #[error("nobody answers on {0}: the agent is not running (a stale socket file)")]
    Refused(PathBuf),
    /// Not allowed to connect.
    #[error(
        "permission denied on {0}: run as root or as a member of the group that owns it (vigil)"
    )]
    Denied(PathBuf),
    /// Other I/O trouble.
    #[error("talking to the agent on {path}: {source}")]
    Io {
        /// Socket path.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The agent answered with an error.
    #[error("the agent says: {0}")]
    Agent(String),
    /// The agent's reply is not JSON.
    #[error("unreadable reply from the agent: {0}")]
    Garbled(String),
    /// The agent hung up.
    #[error("the agent closed the connection")]
    Closed,
}

/// A connection to the agent.
#[derive(Debug)]
pub struct Client {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connect to the socket at `path`.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ClientError::Missing(path.to_path_buf()),
            std::io::ErrorKind::ConnectionRefused => ClientError::Refused(path.to_path_buf()),
            std::io::ErrorKind::PermissionDenied => ClientError::Denied(path.to_path_buf()),
            _ => ClientError::Io {
                path: path.to_path_buf(),
                source: e,
            },
        })?;
        let io = |source| ClientError::Io {
            path: path.to_path_buf(),
            source,
        };
        let writer = stream.try_clone().map_err(io)?;
        Ok(Client {
            path: path.to_path_buf(),
            reader: BufReader::new(stream),
            writer,
        })
    }

    fn io(&self, source: std::io::Error) -> ClientError {
        ClientError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Send `request` and return the body of the reply (`ok: false` becomes
    /// [`ClientError::Agent`]). `timeout` bounds the wait for the reply.
    pub fn request(&mut self, request: &Value, timeout: Duration) -> Result<Value, ClientError> {
        self.send(request)?;
        self.reader
            .get_ref()
            .set_read_timeout(Some(timeout))
            .map_err(|e| self.io(e))?;
        self.next_reply()?.ok_or(ClientError::Closed)
    }

    /// Send `request` without waiting.
    pub fn send(&mut self, request: &Value) -> Result<(), ClientError> {
        let mut line = request.to_string().into_bytes();
        line.push(b'\n');
        self.writer.write_all(&line).map_err(|e| self.io(e))
    }

    /// The next reply line (None when the agent hung up), waiting as long as it takes unless
    /// a timeout was set by [`Client::request`].
    pub fn next_reply(&mut self) -> Result<Option<Value>, ClientError> {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).map_err(|e| self.io(e))?;
        if n == 0 {
            return Ok(None);
        }
        let v: Value = serde_json::from_str(line.trim_end())
            .map_err(|e| ClientError::Garbled(e.to_string()))?;
        if v["ok"] == false {
            let msg = v["error"]
                .as_str()
                .unwrap_or("unspecified error")
                .to_string();
            return Err(ClientError::Agent(msg));
        }
        Ok(Some(v))
    }

    /// Wait without a time limit from now on (streams).
    pub fn no_timeout(&mut self) -> Result<(), ClientError> {
        self.reader
            .get_ref()
            .set_read_timeout(None)
            .map_err(|e| self.io(e))
    }
}
