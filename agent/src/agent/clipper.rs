//! Clips in the running agent: the span of stream a `clip` command or an opening incident asks
//! for is cut from its camera's pre-event buffer once its end has arrived, muxed into an MP4
//! file in the clips folder (under its quota) and handed back to be published in chunks.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::clip::{self, Written};
use crate::clock::rfc3339_ms;
use crate::config::ClipSettings;
use crate::diag;
use crate::ingest::ring::Gap;
use crate::ingest::slot::FrameBoard;
use crate::publish::Identity;
use crate::publish::Message;

/// A refusal: its code and a message a person can act on.
pub type Refusal = (&'static str, String);

/// The span of one camera's stream a clip covers.
#[derive(Debug, Clone)]
pub struct Span {
    /// Camera index.
    pub index: usize,
    /// Camera id.
    pub camera: String,
    /// From (the clip starts at the key frame at or before it).
    pub from: SystemTime,
    /// To.
    pub to: SystemTime,
    /// The clip file's name, without `.mp4`.
    pub name: String,
    /// Start at the oldest key frame held when the buffer does not reach back to `from` (an
    /// incident that opened within `pre_s` of its camera's start), instead of refusing.
    pub clamp: bool,
}

/// Cuts clips.
#[derive(Debug)]
pub struct Clipper {
    board: Arc<FrameBoard>,
    diag: Arc<diag::Shared>,
    settings: ClipSettings,
    dir: PathBuf,
}

impl Clipper {
    /// Clips of `board`'s cameras as `settings` say, kept in `dir`.
    pub fn new(
        board: Arc<FrameBoard>,
        diag: Arc<diag::Shared>,
        settings: ClipSettings,
        dir: PathBuf,
    ) -> Self {
        Clipper {
            board,
            diag,
            settings,
            dir,
        }
    }

    /// The index of camera `id`, if clips can be cut from it.
    pub fn camera(&self, id: &str) -> Result<usize, Refusal> {
        if !self.settings.enabled {
            let message = "this box keeps no pre-event buffer ([clips] enabled = false)";
            return Err(("clips_off", message.into()));
        }
        diag::enabled_camera(&self.diag, id)
            .map(|(index, _)| index)
            .map_err(|e| (e.code(), e.to_string()))
    }

    /// The span around an incident of camera `index` seen at `at`: `pre_s` before, `post_s`
    /// after.
    pub fn around(&self, index: usize, camera: &str, at: SystemTime, name: String) -> Span {
        let pre = crate::config::duration(self.settings.pre_s);
        let post = crate::config::duration(self.settings.post_s);
        Span {
            index,
            camera: camera.to_string(),
            from: at.checked_sub(pre).unwrap_or(at),
            to: at + post,
            name,
            clamp: true,
        }
    }

    /// Wait for the end of `span` to arrive, then cut and write its clip.
    pub async fn make(self: Arc<Self>, span: Span) -> Result<Written, Refusal> {
        let wait = span
            .to
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        tokio::time::sleep(wait + Duration::from_secs(1)).await;
        tokio::task::spawn_blocking(move || self.write(&span))
            .await
            .map_err(|e| ("internal", e.to_string()))?
    }

    fn write(&self, span: &Span) -> Result<Written, Refusal> {
        let recorder = self.board.recorder(span.index).ok_or((
            "clips_off",
            "this box keeps no pre-event buffer".to_string(),
        ))?;
        let cut = match recorder.cut(span.from, span.to) {
            Err(Gap::RolledPast { oldest, .. }) if span.clamp && oldest <= span.to => {
                recorder.cut(oldest, span.to)
            }
            cut => cut,
        }
        .map_err(|gap| refusal(&span.camera, span, &gap))?;
        let incoming = cut.units.iter().map(|u| u.bytes as u64).sum::<u64>();
        for gone in clip::make_room(&self.dir, self.settings.quota_bytes, incoming) {
            tracing::info!(clip = %gone.display(), "clip removed to stay under clips.quota_bytes");
        }
        let path = self.dir.join(format!("{}.mp4", span.name));
        let written = clip::write(&cut, &path).map_err(|e| ("clip_failed", e.to_string()))?;
        tracing::info!(
            camera = span.camera,
            clip = %path.display(),
            bytes = written.bytes.len(),
            frames = written.frames,
            "clip written"
        );
        Ok(written)
    }
}

/// What a gap in camera `camera`'s buffer means for `span`.
fn refusal(camera: &str, span: &Span, gap: &Gap) -> Refusal {
    match gap {
        Gap::Empty => (
            "no_stream",
            format!("camera {camera} has buffered nothing (offline, or no key frame yet)"),
        ),
        Gap::RolledPast { oldest, newest } => (
            "rolled_past",
            format!(
                "camera {camera}'s buffer holds {} to {}: {} is no longer in it (it keeps clips.pre_s + clips.post_s + 5 s)",
                rfc3339_ms(*oldest),
                rfc3339_ms(*newest),
                rfc3339_ms(span.from)
            ),
        ),
        Gap::NotYet { newest } => (
            "no_stream",
            format!(
                "camera {camera}'s stream stopped at {}, before {}",
                rfc3339_ms(*newest),
                rfc3339_ms(span.to)
            ),
        ),
    }
}

/// The largest clip chunk, whatever the broker takes.
pub const MAX_CHUNK: usize = 256 * 1024;

/// The chunks of `written` (camera `camera`, of `incident` if any) as messages of at most
/// `chunk` bytes on `{topic}/{n}`, and what a result or announcement says of them.
pub fn publishable(
    topic: &str,
    camera: &str,
    incident: Option<&uuid::Uuid>,
    written: &Written,
    chunk: usize,
) -> (Vec<Message>, serde_json::Value) {
    let parts = clip::chunks(&written.bytes, chunk.min(MAX_CHUNK));
    let messages = parts
        .iter()
        .enumerate()
        .map(|(n, (bytes, _))| Message {
            topic: format!("{topic}/{n}"),
            payload: bytes.to_vec(),
            retain: false,
        })
        .collect();
    let chunks: Vec<serde_json::Value> = parts
        .iter()
        .map(|(bytes, sha)| serde_json::json!({"bytes": bytes.len(), "sha256": sha}))
        .collect();
    let mut answer = serde_json::json!({
        "camera": camera,
        "topic": topic,
        "start": rfc3339_ms(written.start),
        "duration_s": (written.duration.as_secs_f64() * 1000.0).round() / 1000.0,
        "frames": written.frames,
        "bytes": written.bytes.len(),
        "sha256": written.sha256,
        "chunks": chunks,
    });
    if let Some(id) = incident {
        answer["incident"] = serde_json::json!(id.to_string());
    }
    (messages, answer)
}

/// Clips of incidents made at once (each holds its file twice in memory while it is sent);
/// an incident opening while as many wait for their end gets none.
const MAX_MAKING: usize = 4;

/// Clip schema id (the announcement of an incident's clip).
pub const CLIP_SCHEMA: &str = "vigil.clip/1";

/// An incident that opened and gets a clip (`clips.on_open`).
#[derive(Debug)]
pub struct Order {
    /// Camera index and id.
    pub index: usize,
    /// Camera id.
    pub camera: String,
    /// The incident.
    pub incident: uuid::Uuid,
    /// Its type.
    pub kind: &'static str,
    /// Its first frame's time (as its events say).
    pub at: SystemTime,
    /// When that frame was analysed, on the box's clock (the buffer's clock: a camera's own
    /// capture times may be seconds off).
    pub seen: SystemTime,
}

/// Where the inference threads order clips of incidents as they open.
#[derive(Debug, Default)]
pub struct Orders {
    on_open: Vec<String>,
    tx: Option<tokio::sync::mpsc::Sender<Order>>,
}

impl Orders {
    /// Clips of incidents of `settings.on_open` types, ordered on `tx` (none: clips off).
    pub fn new(settings: &ClipSettings, tx: tokio::sync::mpsc::Sender<Order>) -> Self {
        Orders {
            on_open: if settings.enabled {
                settings.on_open.clone()
            } else {
                Vec::new()
            },
            tx: Some(tx),
        }
    }

    /// Whether an incident of type `kind` gets a clip when it opens.
    pub fn wants(&self, kind: &str) -> bool {
        self.on_open.iter().any(|k| k == kind)
    }

    /// Order a clip (never waits: with 16 clips waiting, this one is skipped, with a WARN).
    pub fn order(&self, order: Order) {
        if let Some(tx) = &self.tx
            && let Err(e) = tx.try_send(order)
        {
            tracing::warn!("a clip was not made: {e}");
        }
    }
}

/// Make the clip of each ordered incident once its end has come, send its chunks and then its
/// announcement on `…/incidents/{camera}/{id}/clip` (`vigil.clip/1`), all in the lowest lane,
/// until the inference threads stop ordering (clips not made by then are not made).
pub async fn serve(
    clipper: Arc<Clipper>,
    mut orders: tokio::sync::mpsc::Receiver<Order>,
    out: tokio::sync::mpsc::Sender<crate::publish::Outgoing>,
    identity: Identity,
    limit: Arc<crate::publish::limit::MessageLimit>,
    pool: Arc<super::workers::Pool>,
) {
    // Clips being made: dropped (and so ended) with this task when the agent stops.
    let mut making = tokio::task::JoinSet::new();
    loop {
        let order = tokio::select! {
            Some(order) = orders.recv() => order,
            Some(_) = making.join_next() => continue,
            else => break,
        };
        if making.len() >= MAX_MAKING {
            tracing::warn!(camera = order.camera, incident = %order.incident, "no clip of the incident: {MAX_MAKING} clips are being made");
            continue;
        }
        let (clipper, out, identity, limit, pool) = (
            Arc::clone(&clipper),
            out.clone(),
            identity.clone(),
            Arc::clone(&limit),
            Arc::clone(&pool),
        );
        making.spawn(async move {
            let name = format!("{}-{}", order.camera, order.incident);
            let span = clipper.around(order.index, &order.camera, order.seen, name);
            let written = match clipper.make(span).await {
                Ok(w) => w,
                Err((code, why)) => {
                    tracing::warn!(camera = order.camera, incident = %order.incident, code, "no clip of the incident: {why}");
                    return;
                }
            };
            let incident = Some(&order.incident);
            let chunk = limit.picture_bytes();
            let topic = identity.clip_topic(&order.camera, incident, "");
            let (mut messages, mut answer) =
                publishable(&topic, &order.camera, incident, &written, chunk);
            answer["schema"] = serde_json::json!(CLIP_SCHEMA);
            answer["device"] = serde_json::json!(identity.device);
            answer["district"] = serde_json::json!(identity.district);
            answer["type"] = serde_json::json!(order.kind);
            answer["incident_at"] = serde_json::json!(rfc3339_ms(order.at));
            messages.push(Message {
                topic: topic.clone(),
                payload: answer.to_string().into_bytes(),
                retain: false,
            });
            let clip = Arc::new(crate::rules::ClipRef {
                topic,
                start: written.start,
                duration_s: answer["duration_s"].as_f64().unwrap_or_default(),
                bytes: written.bytes.len() as u64,
                sha256: written.sha256.clone(),
                chunks: answer["chunks"].as_array().map_or(0, Vec::len),
            });
            let lane = crate::publish::Lane::Telemetry;
            let plain = crate::publish::Outgoing::Plain { lane, messages };
            if out.send(plain).await.is_ok() {
                // Its next event names it (if it is still open).
                let _ = crate::publish::off_runtime(|| {
                    pool.attach_clip(order.index, order.incident, clip)
                });
            }
        });
    }
}
