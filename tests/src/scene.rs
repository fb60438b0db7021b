//! A running scene for end-to-end and fault-injection tests: mosquitto, the RTSP server serving
//! a clip at `/plaza`, the agent binary with a config whose zone covers the plaza's walkway,
//! and a recorder subscribed to everything under `vigil/v1/`. Optionally a [`Proxy`] sits
//! between the agent and the broker, to cut the network.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vigil_demo::rtsp::{Clip, RtspServer};

use crate::{Mosquitto, Proc, Proxy, Received, Recorder, TempDir, fixture, init_logs, repo};

/// The sections every test config shares: device `device` of district `t1`, the broker on
/// loopback `broker`, state in `state/`, health every second, `[diag]` with `diag`.
fn head(device: &str, broker: u16, diag: &str) -> String {
    format!(
        r#"
[device]
id = "{device}"
district = "t1"

[mqtt]
host = "127.0.0.1"
port = {broker}
keep_alive_s = 5

[storage]
state_dir = "state"

[health]
interval_s = 1

[diag]
{diag}
"#
    )
}

/// A config whose zone covers the walkway of the plaza clip; `extra` is appended (more cameras,
/// more sections).
pub fn config(broker: u16, camera_url: &str, extra: &str) -> String {
    config_with(broker, camera_url, "", extra)
}

/// [`config`] with more keys for the plaza camera itself (`frozen_s = 3`, …); the camera is
/// analysed at 5 fps unless they set `analysis_fps`.
pub fn config_with(broker: u16, camera_url: &str, camera_keys: &str, extra: &str) -> String {
    let card = repo().join("models/ssd_mobilenet_v2_coco/model.toml");
    let fps = if camera_keys.contains("analysis_fps") {
        ""
    } else {
        "analysis_fps = 5"
    };
    let head = head("test-box-001", broker, "socket = \"diag.sock\"");
    format!(
        r#"{head}
[[models]]
name = "coco"
card = "{card}"

[[cameras]]
id = "plaza"
url = "{camera_url}"
model = "coco"
{fps}
{camera_keys}

[[cameras.zones]]
name = "walkway"
polygon = [[0.0, 0.30], [1.0, 0.20], [1.0, 0.75], [0.0, 0.50]]
classes = ["person"]
quiet_s = 3
{extra}
"#,
        card = card.display()
    )
}

/// A config of device `fire-box-001` with one fire camera per `(id, url)` on the built-in fire
/// and smoke detector, analysed at 5 fps, health every second, no diagnostics socket.
pub fn fire_config(broker: u16, cameras: &[(&str, String)]) -> String {
    let head = head("fire-box-001", broker, "enabled = false");
    let mut config = format!(
        r#"{head}
[[models]]
name = "fire"
builtin = "fire"
"#
    );
    for (id, url) in cameras {
        config.push_str(&format!(
            "\n[[cameras]]\nid = \"{id}\"\nurl = \"{url}\"\nkind = \"fire\"\nmodel = \"fire\"\nanalysis_fps = 5\n"
        ));
    }
    config
}

/// Whether `s` is a UTC RFC 3339 time with milliseconds (`2026-11-27T23:50:01.123Z`).
pub fn is_rfc3339_ms_utc(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 24
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z'
        && s.chars()
            .enumerate()
            .all(|(i, c)| [4, 7, 10, 13, 16, 19, 23].contains(&i) || c.is_ascii_digit())
}

/// The incident events (not snapshots) among `msgs`, as JSON.
pub fn incidents(msgs: &[Received]) -> Vec<serde_json::Value> {
    msgs.iter()
        .filter(|m| {
            m.topic.starts_with("vigil/v1/t1/test-box-001/incidents/")
                && !m.topic.ends_with("/snapshot")
        })
        .map(|m| m.json())
        .collect()
}

/// The incident `seq`s among `msgs`, first arrivals only, in arrival order.
pub fn first_seqs(msgs: &[Received]) -> Vec<u64> {
    let mut seen = std::collections::BTreeSet::new();
    incidents(msgs)
        .iter()
        .filter_map(|e| e["seq"].as_u64())
        .filter(|s| seen.insert(*s))
        .collect()
}

/// A running scene.
pub struct Scene {
    /// The broker.
    pub broker: Mosquitto,
    /// Subscribed to `vigil/v1/#`.
    pub recorder: Recorder,
    /// The agent process.
    pub agent: Proc,
    /// The relay between agent and broker, when asked for.
    pub proxy: Option<Proxy>,
    /// The agent's log file.
    pub log: PathBuf,
    /// The agent's config file.
    pub cfg: PathBuf,
    /// The agent's state folder (holds `outbox.db`).
    pub state: PathBuf,
    /// The agent's diagnostics socket.
    pub socket: PathBuf,
    bin: PathBuf,
    _server: RtspServer,
    _dir: TempDir,
}

impl Scene {
    /// Start everything, the agent talking to the broker directly.
    pub fn start(bin: &Path, tag: &str, clip: &str, extra: &str) -> anyhow::Result<Scene> {
        Scene::start_with(bin, tag, clip, extra, false)
    }

    /// Start everything; with `proxy`, the agent reaches the broker through a [`Proxy`].
    pub fn start_with(
        bin: &Path,
        tag: &str,
        clip: &str,
        extra: &str,
        proxy: bool,
    ) -> anyhow::Result<Scene> {
        Scene::start_full(bin, tag, Path::new(clip), "", extra, proxy)
    }

    /// Everything: `clip` is a fixture name or an absolute path; `camera_keys` go into the
    /// plaza camera's table.
    pub fn start_full(
        bin: &Path,
        tag: &str,
        clip: &Path,
        camera_keys: &str,
        extra: &str,
        proxy: bool,
    ) -> anyhow::Result<Scene> {
        Scene::start_custom(bin, tag, clip, Mosquitto::start()?, proxy, |port, url| {
            config_with(port, url, camera_keys, extra)
        })
    }

    /// Everything on a broker the test started (with its own limits); `config` writes the
    /// agent's configuration from the broker port and the camera URL.
    pub fn start_custom(
        bin: &Path,
        tag: &str,
        clip: &Path,
        broker: Mosquitto,
        proxy: bool,
        config: impl FnOnce(u16, &str) -> String,
    ) -> anyhow::Result<Scene> {
        Scene::start_mounts(
            bin,
            tag,
            &[("plaza", clip)],
            broker,
            proxy,
            |port, server| config(port, &server.url("plaza")),
        )
    }

    /// [`Scene::start_custom`] with a camera server serving each `(mount, clip)`; `config`
    /// writes the agent's configuration from the broker port and the server.
    pub fn start_mounts(
        bin: &Path,
        tag: &str,
        mounts: &[(&str, &Path)],
        broker: Mosquitto,
        proxy: bool,
        config: impl FnOnce(u16, &RtspServer) -> String,
    ) -> anyhow::Result<Scene> {
        init_logs();
        let proxy = if proxy {
            Some(Proxy::start(broker.port)?)
        } else {
            None
        };
        let mut clips = Vec::new();
        for (mount, clip) in mounts {
            let clip = if clip.is_absolute() {
                clip.to_path_buf()
            } else {
                fixture(&clip.to_string_lossy())
            };
            clips.push((*mount, Arc::new(Clip::load(&clip)?)));
        }
        let server = RtspServer::start(&clips)?;
        let dir = TempDir::new(tag)?;
        let cfg = dir.join("vigil.toml");
        let port = proxy.as_ref().map_or(broker.port, |p| p.port);
        std::fs::write(&cfg, config(port, &server))?;
        let recorder = Recorder::start(broker.port, "vigil/v1/#")?;
        let log = dir.join("agent.log");
        let agent = crate::spawn_agent(bin, &cfg, &log)?;
        Ok(Scene {
            broker,
            recorder,
            agent,
            proxy,
            log,
            cfg,
            state: dir.join("state"),
            socket: dir.join("diag.sock"),
            bin: bin.to_path_buf(),
            _server: server,
            _dir: dir,
        })
    }

    /// Kill the agent without warning (SIGKILL) and start it again on the same config and
    /// state folder.
    pub fn restart_after_kill(&mut self) -> anyhow::Result<()> {
        self.agent.kill();
        self.agent = crate::spawn_agent(&self.bin, &self.cfg, &self.log)?;
        Ok(())
    }

    /// Validate every message received so far against docs/schemas/.
    pub fn check_contract(&self) -> anyhow::Result<()> {
        let n = crate::contract::Contract::load()?.check_all(&self.recorder.snapshot())?;
        assert!(n > 0, "no message to check");
        Ok(())
    }

    /// The agent's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait (up to 90 s) for `pred` on everything received; on timeout the error carries the
    /// agent's log.
    pub fn wait(
        &self,
        what: &str,
        pred: impl Fn(&[Received]) -> bool,
    ) -> anyhow::Result<Vec<Received>> {
        self.wait_for(Duration::from_secs(90), what, pred)
    }

    /// [`Scene::wait`] with a timeout.
    pub fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&[Received]) -> bool,
    ) -> anyhow::Result<Vec<Received>> {
        self.recorder
            .wait_for(timeout, what, pred)
            .map_err(|e| anyhow::anyhow!("{e}\nagent log:\n{}", self.log()))
    }
}
