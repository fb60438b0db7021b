//! The local diagnostics socket: a Unix socket (default `/run/vigil/diag.sock`, mode 0660)
//! speaking newline-delimited JSON, for `vigil status`, `vigil tail` and technicians' scripts.
//! No TCP port. Every request is answered from shared counters and gauges; nothing a client
//! sends can block the pipeline: a bad or oversized request gets an error reply, a slow
//! client only slows its own connection, one that stops reading is hung up on after
//! [`WRITE_TIMEOUT`], and at most [`MAX_CLIENTS`] are served at once.
//!
//! The protocol is documented in `docs/diagnostics.md`; [`protocol`] is its pure part.

pub mod client;
pub mod protocol;
pub mod snapshot;
mod status;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::{Semaphore, broadcast, watch};

use crate::evidence::Jpeg;
use crate::ingest::slot::FrameBoard;
use crate::publish::Identity;
use crate::publish::OutboxGauge;
use crate::telemetry::LatestHealth;
use protocol::Request;
pub use snapshot::Snapshots;

/// Clients served at the same time; more are told to come back.
pub const MAX_CLIENTS: usize = 16;
/// A connection that sends nothing for this long is closed (streams excepted).
const IDLE: Duration = Duration::from_secs(300);
/// Longest a reply may wait for a client to read it: a client that stops reading is hung up on,
/// freeing its slot.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Write `bytes` to a client within `limit`; false when it failed or the client did not read.
async fn send(
    write: &mut (impl tokio::io::AsyncWrite + Unpin),
    bytes: &[u8],
    limit: Duration,
) -> bool {
    matches!(
        tokio::time::timeout(limit, write.write_all(bytes)).await,
        Ok(Ok(()))
    )
}

/// Why the socket cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum DiagError {
    /// Another process answers on the path.
    #[error("another process (a second vigil?) already listens on {0}")]
    InUse(PathBuf),
    /// The folder or the socket cannot be made.
    #[error("cannot listen on {path}: {source}")]
    Bind {
        /// Socket path.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
}

/// A camera as configured.
#[derive(Debug, Clone)]
pub struct CameraInfo {
    /// Camera id.
    pub id: String,
    /// Whether it is pulled.
    pub enabled: bool,
    /// Model name.
    pub model: String,
    /// Configured analysis rate.
    pub analysis_fps: f64,
    /// It analyses a `detect_url` sub-stream (its main stream is received for evidence).
    pub two_streams: bool,
}

impl CameraInfo {
    /// The configured camera `c`.
    pub fn of(c: &crate::config::Camera) -> Self {
        CameraInfo {
            two_streams: c.detect_url.is_some(),
            id: c.id.clone(),
            enabled: c.enabled,
            model: c.model.clone(),
            analysis_fps: c.analysis_fps,
        }
    }
}

/// Where the agent answers a reload request: what was applied, or why nothing was.
pub type ReloadReply = tokio::sync::oneshot::Sender<Result<String, String>>;

/// What the socket reads from the running agent.
#[derive(Debug)]
pub struct Shared {
    /// Device and district.
    pub identity: Identity,
    /// When the agent started.
    pub started_at: SystemTime,
    /// Same, monotonic.
    pub started: Instant,
    /// `host:port` of the broker, or of each of `mqtt.brokers` in order (`, ` between).
    pub broker: String,
    /// Cameras in config order (the frame board's indices); a reload updates them.
    pub cameras: std::sync::Mutex<Vec<CameraInfo>>,
    /// Reload requests go to the agent here.
    pub reload: Option<tokio::sync::mpsc::Sender<ReloadReply>>,
    /// Per-camera counters.
    pub board: Arc<FrameBoard>,
    /// Outbox and broker figures.
    pub outbox: Arc<OutboxGauge>,
    /// The outbox file.
    pub outbox_path: PathBuf,
    /// The state folder (for free space).
    pub state_dir: PathBuf,
    /// The last health figures (rates, inference percentiles).
    pub health: Arc<LatestHealth>,
    /// Stored incident events, as their JSON payloads.
    pub incidents: broadcast::Sender<Arc<str>>,
    /// Snapshot requests for the inference thread.
    pub snapshots: Snapshots,
    /// What the centre stands down (`disarm` commands).
    pub standing: Arc<crate::rules::standdown::Board>,
}

/// Open the socket at `path`: make its folder, replace a stale socket file (one nobody
/// answers on), refuse when another process listens, and set mode 0660.
pub fn bind(path: &Path) -> Result<UnixListener, DiagError> {
    let fail = |source| DiagError::Bind {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(DiagError::InUse(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(fail)?;
    }
    let listener = UnixListener::bind(path).map_err(fail)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(fail)?;
    Ok(listener)
}

/// Serve clients until `stop` turns true; then remove the socket file.
pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((mut stream, _)) => {
                    let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                        let busy = protocol::error(format!("busy: {MAX_CLIENTS} clients already connected"));
                        // Never let one client hold up the accept loop.
                        let _ = send(&mut stream, &protocol::line(&busy), Duration::from_millis(100)).await;
                        continue;
                    };
                    let shared = Arc::clone(&shared);
                    tokio::spawn(async move {
                        connection(stream, &shared).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!("diagnostics socket: cannot accept a client: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

async fn connection(stream: tokio::net::UnixStream, shared: &Shared) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut buf = Vec::with_capacity(256);
    loop {
        buf.clear();
        let limit = (protocol::MAX_REQUEST_BYTES + 1) as u64;
        let got =
            tokio::time::timeout(IDLE, (&mut read).take(limit).read_until(b'\n', &mut buf)).await;
        let n = match got {
            Ok(Ok(n)) => n,
            Ok(Err(_)) | Err(_) => return,
        };
        if n == 0 {
            return;
        }
        let complete = buf.last() == Some(&b'\n');
        if complete {
            buf.pop();
        }
        if !complete && buf.len() > protocol::MAX_REQUEST_BYTES {
            // The rest of the line cannot be told apart from a next request: hang up.
            let refusal = protocol::error(format!(
                "request over the {}-byte limit; closing",
                protocol::MAX_REQUEST_BYTES
            ));
            let _ = send(&mut write, &protocol::line(&refusal), WRITE_TIMEOUT).await;
            return;
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let reply = match protocol::parse(&buf) {
            Err(e) => protocol::error(e),
            Ok(Request::Incidents { camera, kind }) => {
                stream_incidents(&mut read, &mut write, shared, camera, kind).await;
                return;
            }
            Ok(req) => answer(req, shared).await,
        };
        if !send(&mut write, &protocol::line(&reply), WRITE_TIMEOUT).await {
            return;
        }
    }
}

async fn answer(req: Request, shared: &Shared) -> Value {
    match req {
        Request::Status => protocol::ok("status", status::status(shared)),
        Request::Cameras => protocol::ok("cameras", status::cameras(shared)),
        Request::Outbox { rows } => {
            let path = shared.outbox_path.clone();
            let figures = crate::publish::stats::outbox_json(&shared.outbox.get());
            let listed = tokio::task::spawn_blocking(move || status::outbox_rows(&path, rows))
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
            match listed {
                Ok(rows) => {
                    let mut v = figures;
                    if let Some(o) = v.as_object_mut() {
                        o.insert("rows".into(), rows);
                    }
                    protocol::ok("outbox", v)
                }
                Err(e) => protocol::error(e),
            }
        }
        Request::Snapshot { camera } => snapshot(shared, &camera).await,
        Request::Reload => reload(shared).await,
        Request::Incidents { .. } => protocol::error("incidents is a stream; send it alone"),
    }
}

async fn reload(shared: &Shared) -> Value {
    let Some(tx) = &shared.reload else {
        return protocol::error("this agent cannot reload");
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    if tx.send(reply).await.is_err() {
        return protocol::error("the agent is stopping");
    }
    match answer.await {
        Ok(Ok(done)) => protocol::ok("reloaded", json!(done)),
        Ok(Err(why)) => protocol::error(why),
        Err(_) => protocol::error("the agent is stopping"),
    }
}

async fn snapshot(shared: &Shared, camera: &str) -> Value {
    match take_snapshot(shared, camera).await {
        Ok(jpeg) => {
            use base64::Engine;
            protocol::ok(
                "snapshot",
                json!({
                    "camera": camera,
                    "width": jpeg.width,
                    "height": jpeg.height,
                    "jpeg_base64": base64::engine::general_purpose::STANDARD.encode(&jpeg.bytes),
                }),
            )
        }
        Err(e) => protocol::error(e.to_string()),
    }
}

/// The longest a snapshot waits for a camera's next analysed frame.
const MAX_SNAPSHOT_WAIT: Duration = Duration::from_secs(60);

/// Why no snapshot of a camera can be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// No camera of that id.
    #[error("no camera \"{camera}\"; cameras: {known}")]
    UnknownCamera {
        /// The id asked for.
        camera: String,
        /// The configured ids, comma-separated.
        known: String,
    },
    /// The camera is switched off in the configuration.
    #[error("camera \"{0}\" is disabled in the configuration")]
    Disabled(String),
    /// No frame of the camera was analysed in time.
    #[error("no analysed frame of camera \"{camera}\" within {wait_s} s (camera {state})")]
    NoFrame {
        /// The camera.
        camera: String,
        /// How long was waited.
        wait_s: u64,
        /// The camera's published state and reason.
        state: String,
    },
    /// The frame could not be rendered.
    #[error("cannot render camera \"{camera}\": {why}")]
    Render {
        /// The camera.
        camera: String,
        /// The encoder's error.
        why: String,
    },
    /// The agent stops.
    #[error("the agent is stopping")]
    Stopping,
}

impl SnapshotError {
    /// A short machine-readable code (command results).
    pub fn code(&self) -> &'static str {
        match self {
            SnapshotError::UnknownCamera { .. } => "unknown_camera",
            SnapshotError::Disabled(_) => "camera_disabled",
            SnapshotError::NoFrame { .. } => "no_frame",
            SnapshotError::Render { .. } => "render_failed",
            SnapshotError::Stopping => "stopping",
        }
    }
}

/// Camera `camera`'s index and what is known of it, when the box has it and it is enabled
/// (what a snapshot or a clip may be taken of).
pub fn enabled_camera(shared: &Shared, camera: &str) -> Result<(usize, CameraInfo), SnapshotError> {
    let cameras = shared
        .cameras
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(index) = cameras.iter().position(|c| c.id == camera) else {
        let known: Vec<&str> = cameras.iter().map(|c| c.id.as_str()).collect();
        return Err(SnapshotError::UnknownCamera {
            camera: camera.to_string(),
            known: known.join(", "),
        });
    };
    if !cameras[index].enabled {
        return Err(SnapshotError::Disabled(camera.to_string()));
    }
    Ok((index, cameras[index].clone()))
}

/// The next analysed frame of `camera` as an evidence JPEG (zones, lines and detections
/// drawn), waiting long enough for the next frame at the camera's analysis rate plus a busy
/// detector (5 to 60 s).
pub async fn take_snapshot(shared: &Shared, camera: &str) -> Result<Jpeg, SnapshotError> {
    let (index, info) = enabled_camera(shared, camera)?;
    let wait = Duration::try_from_secs_f64(2.0 / info.analysis_fps)
        .unwrap_or(MAX_SNAPSHOT_WAIT)
        .clamp(Duration::from_secs(5), MAX_SNAPSHOT_WAIT);
    let rx = shared.snapshots.request(index);
    match tokio::time::timeout(wait, rx).await {
        Ok(Ok(Ok(jpeg))) => Ok(jpeg),
        Ok(Ok(Err(why))) => Err(SnapshotError::Render {
            camera: camera.to_string(),
            why,
        }),
        Ok(Err(_)) => Err(SnapshotError::Stopping),
        Err(_) => Err(SnapshotError::NoFrame {
            camera: camera.to_string(),
            wait_s: wait.as_secs(),
            state: status::camera_state(shared, index),
        }),
    }
}

async fn stream_incidents(
    read: &mut BufReader<tokio::net::unix::OwnedReadHalf>,
    write: &mut tokio::net::unix::OwnedWriteHalf,
    shared: &Shared,
    camera: Option<String>,
    kind: Option<String>,
) {
    let mut rx = shared.incidents.subscribe();
    let hello = protocol::ok(
        "streaming",
        json!({ "camera": camera, "type": kind, "what": "incidents" }),
    );
    if !send(write, &protocol::line(&hello), WRITE_TIMEOUT).await {
        return;
    }
    let mut sink = [0u8; 256];
    loop {
        let line = tokio::select! {
            got = rx.recv() => match got {
                Ok(text) => {
                    let Ok(event) = serde_json::from_str::<Value>(&text) else { continue };
                    if !protocol::wanted(&event, camera.as_deref(), kind.as_deref()) {
                        continue;
                    }
                    json!({ "incident": event })
                }
                Err(broadcast::error::RecvError::Lagged(n)) => json!({ "lagged": n }),
                Err(broadcast::error::RecvError::Closed) => return,
            },
            // Anything the client sends is ignored; its hanging up ends the stream.
            n = read.read(&mut sink) => match n {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            },
        };
        if !send(write, &protocol::line(&line), WRITE_TIMEOUT).await {
            return;
        }
    }
}
