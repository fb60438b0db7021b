//! Helpers for vigil's integration tests: a real mosquitto broker on a free loopback port, the
//! plaza fixture served by a real RTSP server, an MQTT recorder, and the agent as a child
//! process.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

pub mod contract;
pub mod golden;
pub use vigil::demo::{free_port, wait_for_port};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fixture file under `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures").join(name)
}

/// A fresh temporary folder, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Create `…/vigil-test-{tag}-{pid}-{n}`.
    pub fn new(tag: &str) -> anyhow::Result<TempDir> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("vigil-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p)?;
        Ok(TempDir(p))
    }

    /// A path inside.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Proc {
    /// SIGKILL the process and reap it.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// Ask it to stop (SIGTERM) and wait up to `timeout` for it to exit.
    pub fn terminate(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let pid = self.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.0.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        bail!("did not exit within {timeout:?} of SIGTERM")
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A real mosquitto broker on 127.0.0.1 with a generated config, no persistence.
pub struct Mosquitto {
    /// Its port.
    pub port: u16,
    _proc: Proc,
    _dir: TempDir,
}

impl Mosquitto {
    /// Start mosquitto (from PATH or /usr/sbin) and wait until it accepts connections.
    pub fn start() -> anyhow::Result<Mosquitto> {
        let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .context(
                "mosquitto is not installed (apt-get install mosquitto; `make test` does it)",
            )?;
        let dir = TempDir::new("mosquitto")?;
        let port = free_port()?;
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\nmax_packet_size 16777216\n"
            ),
        )?;
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start mosquitto")?;
        let mut proc = Proc(child);
        if !wait_for_port(port, Duration::from_secs(10)) || !proc.running() {
            bail!("mosquitto did not start on 127.0.0.1:{port}");
        }
        Ok(Mosquitto {
            port,
            _proc: proc,
            _dir: dir,
        })
    }
}

/// One received MQTT message.
#[derive(Debug, Clone)]
pub struct Received {
    /// Topic.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// Retained flag as delivered.
    pub retain: bool,
    /// When it arrived.
    pub at: Instant,
}

impl Received {
    /// Payload parsed as JSON (panics in tests when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap_or(serde_json::Value::Null)
    }
}

/// A subscriber recording everything under a filter, on its own thread.
pub struct Recorder {
    /// Messages so far.
    pub messages: Arc<Mutex<Vec<Received>>>,
    client: Client,
}

impl Recorder {
    /// Connect to the broker on `port` and subscribe to `filter` (QoS 1).
    pub fn start(port: u16, filter: &str) -> anyhow::Result<Recorder> {
        let mut opts = MqttOptions::new(format!("recorder-{}", free_port()?), "127.0.0.1", port);
        opts.set_max_packet_size(16 << 20, 16 << 20);
        let (client, mut conn) = Client::new(opts, 64);
        client.subscribe(filter, QoS::AtLeastOnce)?;
        let messages = Arc::new(Mutex::new(Vec::new()));
        let m2 = Arc::clone(&messages);
        std::thread::spawn(move || {
            for ev in conn.iter() {
                match ev {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if let Ok(mut v) = m2.lock() {
                            v.push(Received {
                                topic: p.topic.clone(),
                                payload: p.payload.to_vec(),
                                retain: p.retain,
                                at: Instant::now(),
                            });
                        }
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        });
        Ok(Recorder { messages, client })
    }

    /// A copy of everything received so far.
    pub fn snapshot(&self) -> Vec<Received> {
        self.messages.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Wait until `pred` holds for the received messages, or fail after `timeout`.
    pub fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&[Received]) -> bool,
    ) -> anyhow::Result<Vec<Received>> {
        let end = Instant::now() + timeout;
        loop {
            let now = self.snapshot();
            if pred(&now) {
                return Ok(now);
            }
            if Instant::now() > end {
                let topics: Vec<&str> = now.iter().map(|m| m.topic.as_str()).collect();
                bail!(
                    "timed out after {timeout:?} waiting for {what}; received {} message(s): {topics:?}",
                    now.len()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.client.disconnect();
    }
}

/// The `vigil` binary built for the tests (usable only from integration tests, where cargo
/// defines `CARGO_BIN_EXE_*`).
#[macro_export]
macro_rules! vigil_bin {
    () => {
        std::path::Path::new(env!("CARGO_BIN_EXE_vigil-under-test"))
    };
}

/// Start the agent binary `bin` with `vigil run --config FILE`, logs to `log`.
pub fn spawn_agent(bin: &Path, config: &Path, log: &Path) -> anyhow::Result<Proc> {
    let log_file = std::fs::File::create(log)?;
    let child = Command::new(bin)
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info,rumqttc=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .context("cannot start the vigil binary")?;
    Ok(Proc(child))
}

/// Run the agent binary `bin` with arguments to completion: (exit code, stdout, stderr).
pub fn run_cli(bin: &Path, args: &[&str]) -> anyhow::Result<(i32, String, String)> {
    let out = Command::new(bin).args(args).output()?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Initialise logging for in-process parts (RTSP server) once.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_test_writer()
        .try_init();
}
