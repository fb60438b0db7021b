//! Helpers for vigil's integration tests: a real mosquitto broker on a free loopback port, the
//! plaza fixture served by a real RTSP server, an MQTT recorder, and the agent as a child
//! process.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

pub mod certs;
pub mod contract;
pub mod golden;
pub mod mp4;
pub mod npy;
pub mod scene;
pub mod tier;
pub use vigil_demo::{free_port, wait_for_port};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fixture file under `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures").join(name)
}

/// Decode `clip` and write `out` through `middle`, the GStreamer elements between the decoder
/// and the file (`videoconvert ! … ! mp4mux`).
pub fn encode(clip: &Path, out: &Path, middle: &str) -> anyhow::Result<()> {
    let pipeline = format!(
        "filesrc location={} ! decodebin ! {middle} ! filesink location={}",
        clip.display(),
        out.display()
    );
    let status = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(pipeline.split_whitespace())
        .status()?;
    anyhow::ensure!(
        status.success(),
        "gst-launch-1.0 could not make {}",
        out.display()
    );
    Ok(())
}

/// `clip` scaled to `w`×`h` (square pixels, H.264 in MP4), made with GStreamer in `dir`.
pub fn scaled(clip: &Path, dir: &TempDir, w: u32, h: u32) -> anyhow::Result<PathBuf> {
    let stem = clip.file_stem().unwrap_or_default().to_string_lossy();
    let out = dir.join(&format!("{stem}_{w}x{h}.mp4"));
    encode(
        clip,
        &out,
        &format!(
            "videoconvert ! videoscale ! video/x-raw,width={w},height={h},pixel-aspect-ratio=1/1 ! \
             x264enc speed-preset=veryfast key-int-max=30 ! h264parse ! mp4mux"
        ),
    )?;
    Ok(out)
}

/// One request to the agent's diagnostics socket on a fresh connection; the reply line as
/// JSON.
pub fn ask(socket: &Path, request: &str) -> anyhow::Result<serde_json::Value> {
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(request.as_bytes())?;
    s.write_all(b"\n")?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    Ok(serde_json::from_str(&line)?)
}

/// A camera's two streams made from `clip` by `scripts/camera-streams.sh` (1920×1080 and
/// 640×360 at 25 fps, `codec` `h264` or `h265` with B-frames), in `dir`: `(main, sub)`.
pub fn camera_streams(clip: &Path, dir: &Path, codec: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let status = Command::new(repo().join("scripts/camera-streams.sh"))
        .arg(clip)
        .arg(dir)
        .arg(codec)
        .status()?;
    anyhow::ensure!(
        status.success(),
        "scripts/camera-streams.sh failed on {}",
        clip.display()
    );
    Ok((
        dir.join(format!("main_{codec}.mp4")),
        dir.join(format!("sub_{codec}.mp4")),
    ))
}

/// Frames camera `cam` had analysed, from the latest health message among `m` that lists it.
pub fn analysed_of(m: &[Received], cam: &str) -> u64 {
    health_of(m, cam)
        .and_then(|c| c["analysed"].as_u64())
        .unwrap_or(0)
}

/// The latest health line of camera `cam` in `m`.
pub fn health_of(m: &[Received], cam: &str) -> Option<serde_json::Value> {
    m.iter()
        .rev()
        .filter(|x| x.topic.ends_with("/health"))
        .find_map(|x| {
            x.json()["cameras"]
                .as_array()?
                .iter()
                .find(|c| c["camera"] == cam)
                .cloned()
        })
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
    /// Its port (plain MQTT, anonymous).
    pub port: u16,
    extra: String,
    /// A whole configuration of the test's own, used instead of the generated one.
    own: Option<String>,
    proc: Option<Proc>,
    dir: TempDir,
}

fn mosquitto_bin() -> anyhow::Result<PathBuf> {
    ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .context("mosquitto is not installed (apt-get install mosquitto; `make test` does it)")
}

impl Mosquitto {
    /// Start mosquitto (from PATH or /usr/sbin) and wait until it accepts connections.
    pub fn start() -> anyhow::Result<Mosquitto> {
        Mosquitto::start_with("")
    }

    /// Start mosquitto with more configuration after its plain anonymous listener (more
    /// listeners, each with its own settings: `per_listener_settings` is on when `extra` is
    /// given).
    pub fn start_with(extra: &str) -> anyhow::Result<Mosquitto> {
        let mut m = Mosquitto {
            port: free_port()?,
            extra: extra.to_string(),
            own: None,
            proc: None,
            dir: TempDir::new("mosquitto")?,
        };
        m.restart()?;
        Ok(m)
    }

    /// Start mosquitto with configuration `conf` as it is (its listeners, persistence,
    /// bridges), waiting until `port` accepts connections.
    pub fn with_config(port: u16, conf: &str) -> anyhow::Result<Mosquitto> {
        let mut m = Mosquitto {
            port,
            extra: String::new(),
            own: Some(conf.to_string()),
            proc: None,
            dir: TempDir::new("mosquitto")?,
        };
        m.restart()?;
        Ok(m)
    }

    /// Stop the broker cleanly (SIGTERM): it saves its persistent state first.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        match self.proc.take() {
            Some(mut p) => p.terminate(Duration::from_secs(10)),
            None => Ok(()),
        }
    }

    /// The broker process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(|p| p.0.id())
    }

    /// The broker's folder (for certificates and password files a test writes).
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// Kill the broker without warning (SIGKILL): clients see their connections reset.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// Start it again on the same port, empty (no persistence: no sessions, no retained
    /// messages survive).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let port = self.port;
        let conf = self.dir.join("mosquitto.conf");
        let per_listener = if self.extra.is_empty() {
            ""
        } else {
            "per_listener_settings true\n"
        };
        let text = match &self.own {
            Some(own) => own.clone(),
            None => format!(
                "{per_listener}persistence false\nlog_dest stderr\nlog_type error\nlog_type warning\nmax_packet_size 16777216\nlistener {port} 127.0.0.1\nallow_anonymous true\n{}\n",
                self.extra
            ),
        };
        std::fs::write(&conf, text)?;
        // The port was just released by a killed broker: retry briefly if it is not yet free.
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let child = Command::new(mosquitto_bin()?)
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("cannot start mosquitto")?;
            let mut proc = Proc(child);
            if wait_for_port(port, Duration::from_secs(5)) && proc.running() {
                self.proc = Some(proc);
                return Ok(());
            }
            proc.kill();
            if Instant::now() > end {
                bail!("mosquitto did not start on 127.0.0.1:{port}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A TCP relay on a free loopback port in front of `upstream`, for cutting the network between
/// the agent and the broker: while closed, new connections are refused (accepted and dropped)
/// and [`Proxy::cut`] resets the open ones.
pub struct Proxy {
    /// The port clients connect to.
    pub port: u16,
    open: Arc<std::sync::atomic::AtomicBool>,
    frozen: Arc<std::sync::atomic::AtomicBool>,
    conns: Arc<Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    /// Relay 127.0.0.1:`port` → 127.0.0.1:`upstream`, open.
    pub fn start(upstream: u16) -> anyhow::Result<Proxy> {
        use std::net::{Shutdown, TcpListener, TcpStream};
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let open = Arc::new(AtomicBool::new(true));
        let frozen = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let (o2, c2, f2) = (Arc::clone(&open), Arc::clone(&conns), Arc::clone(&frozen));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !o2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let pipe = |mut from: TcpStream, mut to: TcpStream| {
                    let frozen = Arc::clone(&f2);
                    std::thread::spawn(move || {
                        use std::io::{Read, Write};
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 {
                                break;
                            }
                            // Frozen: hold the bytes, keep the connection (a stalled camera).
                            while frozen.load(Ordering::SeqCst) {
                                std::thread::sleep(std::time::Duration::from_millis(50));
                            }
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                };
                if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                    if let Ok(mut v) = c2.lock() {
                        v.push(c);
                        v.push(s);
                    }
                    if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                        pipe(c, s);
                        pipe(server, client);
                    }
                }
            }
        });
        Ok(Proxy {
            port,
            open,
            frozen,
            conns,
        })
    }

    /// Stop forwarding bytes, keeping every connection open (and accepting new ones, which
    /// get nothing either): a peer that hangs without hanging up.
    pub fn freeze(&self) {
        self.frozen.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Forward again.
    pub fn thaw(&self) {
        self.frozen
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Refuse new connections and reset the open ones.
    pub fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut v) = self.conns.lock() {
            for s in v.drain(..) {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    /// Accept connections again.
    pub fn restore(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
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

/// An MQTT subscriber recording everything it receives; it reconnects and subscribes again
/// after the broker comes back (the broker may have lost its session).
pub struct Recorder {
    /// Messages so far.
    pub messages: Arc<Mutex<Vec<Received>>>,
    subscriptions: Arc<std::sync::atomic::AtomicU64>,
    client: Client,
}

impl Recorder {
    /// Connect to the broker on `port`, subscribe to `filter` (QoS 1) and wait for the
    /// subscription to be acknowledged.
    pub fn start(port: u16, filter: &str) -> anyhow::Result<Recorder> {
        let opts = MqttOptions::new(format!("recorder-{}", free_port()?), "127.0.0.1", port);
        Recorder::start_opts(opts, filter)
    }

    /// [`Recorder::start`] with connection options of the test's own (TLS, credentials, a
    /// kept session).
    pub fn start_opts(mut opts: MqttOptions, filter: &str) -> anyhow::Result<Recorder> {
        use std::sync::atomic::{AtomicU64, Ordering};
        opts.set_max_packet_size(16 << 20, 16 << 20);
        let (client, mut conn) = Client::new(opts, 64);
        let messages = Arc::new(Mutex::new(Vec::new()));
        let subscriptions = Arc::new(AtomicU64::new(0));
        let (m2, s2, c2, f2) = (
            Arc::clone(&messages),
            Arc::clone(&subscriptions),
            client.clone(),
            filter.to_string(),
        );
        std::thread::spawn(move || {
            for ev in conn.iter() {
                match ev {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = c2.try_subscribe(f2.as_str(), QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        s2.fetch_add(1, Ordering::SeqCst);
                    }
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
        let r = Recorder {
            messages,
            subscriptions,
            client,
        };
        r.wait_subscribed(1, Duration::from_secs(10))?;
        Ok(r)
    }

    /// Wait until the broker acknowledged `n` subscriptions in all (one per connection).
    pub fn wait_subscribed(&self, n: u64, timeout: Duration) -> anyhow::Result<()> {
        let end = Instant::now() + timeout;
        while self.subscriptions.load(std::sync::atomic::Ordering::SeqCst) < n {
            if Instant::now() > end {
                bail!("the recorder was not subscribed (#{n}) within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
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

/// A password file for mosquitto with `users` (`mosquitto_passwd`).
pub fn mosquitto_users(path: &Path, users: &[(&str, &str)]) -> anyhow::Result<()> {
    for (i, (user, password)) in users.iter().enumerate() {
        let mut c = Command::new("mosquitto_passwd");
        c.arg("-b");
        if i == 0 {
            c.arg("-c");
        }
        let status = c.arg(path).args([user, password]).status()?;
        anyhow::ensure!(status.success(), "mosquitto_passwd failed");
    }
    Ok(())
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
    // Appended to: a restarted agent's log follows the previous run's.
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
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
