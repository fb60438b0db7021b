//! `vigil doctor [--config FILE]`: every check an installer needs, as a ✓ / ! / ✗ list with the
//! fix for each problem: the configuration, the models and their checksums, each camera (a
//! frame, and its clock where the stream carries one), the broker (a publish round trip), the
//! outbox folder and free disk, the box's clock, the secrets files, the service user and
//! folders. Exit 0 when nothing failed (warnings allowed), 1 otherwise, 78 when the
//! configuration itself cannot be read.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use crate::agent::{Plan, StartError};
use crate::config::Config;
use crate::ingest::probe::{heavy, misfit};

/// Arguments of `vigil doctor`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file.
    #[command(flatten)]
    config: super::ConfigArgs,
    /// Seconds to wait for each camera's first frame and for each stage of the broker check
    /// (at most 600 there).
    #[arg(long, default_value_t = 10, value_name = "S")]
    timeout: u64,
    /// Warn when less than this many GiB are free for the state folder (beyond the outbox's
    /// own bound).
    #[arg(long, default_value_t = 1.0, value_name = "GIB")]
    min_free_gib: f64,
    /// A camera clock further than this from the box's is a warning.
    #[arg(long, default_value_t = 2.0, value_name = "S")]
    clock_tolerance_s: f64,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// ✓
    Ok,
    /// ! — works, but should be looked at.
    Warn,
    /// ✗ — will not work.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// Outcome.
    pub status: Status,
    /// What was checked and what was found.
    pub what: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn ok(what: impl Into<String>) -> Check {
        Check {
            status: Status::Ok,
            what: what.into(),
            fix: None,
        }
    }
    fn warn(what: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            status: Status::Warn,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }
    fn fail(what: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            status: Status::Fail,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }
}

/// With commands on: who may stand rules down or replace the configuration.
fn commands(config: &crate::config::Config) -> Option<Check> {
    let c = &config.commands;
    if !c.enabled {
        return None;
    }
    let signed: Vec<&str> = crate::command::signature::SIGNED
        .iter()
        .copied()
        .filter(|name| c.allow.iter().any(|a| a == name))
        .collect();
    Some(if c.public_keys.is_empty() && !signed.is_empty() {
        let names = signed.join(", ");
        Check::warn(
            format!(
                "commands: {names} are taken unsigned: whoever may publish to this box's cmd topic can stand its rules down or replace its configuration"
            ),
            format!(
                "add [commands] public_keys (vigil keygen) so that only signed {names} are taken, or leave them out of commands.allow"
            ),
        )
    } else {
        let keys = if signed.is_empty() || c.public_keys.is_empty() {
            String::new()
        } else {
            format!(
                ", {} signed ({} key(s))",
                signed.join(", "),
                c.public_keys.len()
            )
        };
        Check::ok(format!("commands: {} allowed{keys}", c.allow.join(", ")))
    })
}

/// The readable report.
pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        let mark = match c.status {
            Status::Ok => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
        };
        out.push_str(&format!("{mark} {}\n", c.what));
        if let Some(f) = &c.fix {
            out.push_str(&format!("    fix: {f}\n"));
        }
    }
    let fails = checks.iter().filter(|c| c.status == Status::Fail).count();
    let warns = checks.iter().filter(|c| c.status == Status::Warn).count();
    out.push_str(&match (fails, warns) {
        (0, 0) => "all checks passed\n".to_string(),
        (0, w) => format!("no failure, {w} warning(s)\n"),
        (f, w) => format!("{f} failure(s), {w} warning(s)\n"),
    });
    out
}

/// Run every check and print.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = match crate::config::load(&args.config.path) {
        Ok(l) => l,
        Err(e) => return Ok(super::report_start_error(&StartError::Config(e))),
    };
    let mut checks = Vec::new();
    let config = loaded.config.clone();
    let zones: usize = config.cameras.iter().map(|c| c.zones.len()).sum();
    checks.push(Check::ok(format!(
        "configuration {} valid ({} camera(s), {zones} zone(s), {} model(s))",
        args.config.path.display(),
        config.cameras.len(),
        config.models.len()
    )));
    let base = loaded.base_dir.clone();
    match Plan::build(loaded) {
        Ok(plan) => {
            for m in &config.models {
                if let Some(card) = plan.cards.get(&m.name) {
                    let what = match (&m.fuse_with, card.builtin) {
                        (Some(with), _) => format!(
                            "built into vigil, fused with model {with}, fusion = {}",
                            m.fusion.as_str()
                        ),
                        (None, Some(_)) => "built into vigil, no model file".to_string(),
                        (None, None) => "file checksum matches its card".to_string(),
                    };
                    checks.push(Check::ok(format!(
                        "model {}: {} {} ({what})",
                        m.name, card.card.name, card.card.version
                    )));
                }
            }
        }
        Err(e) => checks.push(Check::fail(
            format!("models: {e}"),
            "fix the model card or file it names (vigil check --config … shows every problem)",
        )),
    }
    let resolve = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    checks.extend(cameras(&config, &args, &args.config.path));
    checks.extend(commands(&config));
    checks.extend(secrets_and_broker(&config, &resolve, args.timeout));
    checks.extend(storage(&config, &resolve, args.min_free_gib));
    checks.push(clock());
    checks.extend(service(&config, &resolve));
    let failed = checks.iter().any(|c| c.status == Status::Fail);
    if args.json {
        println!("{}", json!({"ok": !failed, "checks": checks}));
    } else {
        print!(
            "vigil doctor — {}\n{}",
            args.config.path.display(),
            render(&checks)
        );
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Probe every stream of every enabled camera at once (each on its own thread).
fn cameras(config: &Config, args: &Args, cfg_path: &Path) -> Vec<Check> {
    let timeout = Duration::from_secs(args.timeout.max(1));
    let handles: Vec<_> = config
        .cameras
        .iter()
        .filter(|c| c.enabled)
        .map(|c| {
            let spawn = |url: String| {
                let transport = c.transport;
                std::thread::spawn(move || {
                    crate::ingest::probe::probe(&url, transport, timeout, Duration::from_secs(1))
                })
            };
            let main = spawn(c.url.clone());
            let detect = c.detect_url.clone().map(spawn);
            (c, main, detect)
        })
        .collect();
    let mut out = Vec::new();
    for (c, main, detect) in handles {
        let id = &c.id;
        let joined = |h: std::thread::JoinHandle<_>| {
            h.join().unwrap_or_else(|_| {
                Err(crate::ingest::probe::ProbeError::Other(
                    "the probe crashed; report this as a bug".into(),
                ))
            })
        };
        let main = stream_checks(&mut out, c, "", joined(main), args, cfg_path);
        let detect =
            detect.map(|h| stream_checks(&mut out, c, " (detect_url)", joined(h), args, cfg_path));
        match (main, detect) {
            (Some(m), None) if heavy(m.width, m.height, m.fps) => out.push(Check::warn(
                format!(
                    "camera {id}: analyses its {}×{} stream at {:.0} fps, decoding every frame (most of a core on an ARM box)",
                    m.width,
                    m.height,
                    m.fps.unwrap_or_default()
                ),
                "set detect_url to the camera's sub-stream (640×360 or so): it is analysed, and the main stream is decoded only for evidence",
            )),
            (Some(m), Some(Some(d))) => {
                if let Some(why) = misfit((m.width, m.height), (d.width, d.height)) {
                    out.push(Check::warn(format!("camera {id}: {why}"), "see docs/config.md, detect_url"));
                }
            }
            _ => {}
        }
    }
    if config.cameras.iter().all(|c| !c.enabled) {
        out.push(Check::warn(
            "every camera is disabled",
            "set enabled = true on the cameras this box should watch",
        ));
    }
    out
}

/// The checks of one stream of camera `c` (`which` names it in the lines); its size and rate
/// when it answered.
fn stream_checks(
    out: &mut Vec<Check>,
    c: &crate::config::Camera,
    which: &str,
    result: Result<crate::ingest::probe::Report, crate::ingest::probe::ProbeError>,
    args: &Args,
    cfg_path: &Path,
) -> Option<Stream> {
    let id = &c.id;
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            out.push(Check::fail(
                format!("camera {id}{which}: {e}"),
                format!(
                    "fix the camera or its URL; try `vigil probe --config {} --camera {id}`",
                    cfg_path.display()
                ),
            ));
            return None;
        }
    };
    let fps = r.fps.map_or("? fps".into(), |f| format!("{f:.1} fps"));
    out.push(Check::ok(format!(
        "camera {id}{which}: {} {}×{} at {fps} over {}, first frame after {:.1} s",
        r.codec,
        r.width,
        r.height,
        c.transport.as_str(),
        r.first_frame.as_secs_f64()
    )));
    match r.clock_offset_s {
        Some(off) if off.abs() > args.clock_tolerance_s => out.push(Check::warn(
            format!("camera {id}{which}: its clock is {off:+.1} s off this box's"),
            "point the camera at the same NTP server as the box (frame_time then falls back to arrival time beyond 10 s)",
        )),
        Some(off) => out.push(Check::ok(format!(
            "camera {id}{which}: clock within {:.1} s of the box's ({off:+.2} s)",
            args.clock_tolerance_s
        ))),
        None => {}
    }
    Some(Stream {
        width: r.width,
        height: r.height,
        fps: r.fps,
    })
}

/// What the camera checks compare between a camera's streams.
struct Stream {
    width: u32,
    height: u32,
    fps: Option<f64>,
}

fn secrets_and_broker(
    config: &Config,
    resolve: &dyn Fn(&Path) -> PathBuf,
    timeout: u64,
) -> Vec<Check> {
    let security = match crate::publish::tls::load(&config.mqtt, resolve) {
        Ok(s) => s,
        Err(e) => {
            return vec![Check::fail(
                format!("broker secrets: {e}"),
                "make the files exist, owned by the vigil user, mode 600",
            )];
        }
    };
    let mut out = Vec::new();
    let secrets: Vec<&str> = [
        config
            .mqtt
            .password_file
            .as_ref()
            .map(|_| "mqtt.password_file"),
        config
            .mqtt
            .tls
            .as_ref()
            .and_then(|t| t.key_file.as_ref())
            .map(|_| "mqtt.tls.key_file"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !secrets.is_empty() {
        out.push(Check::ok(format!(
            "secrets files private ({})",
            secrets.join(", ")
        )));
    }
    let identity = crate::publish::Identity {
        device: config.device.id.clone(),
        district: config.device.district.clone(),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            out.push(Check::fail(
                format!("broker: cannot start a runtime: {e}"),
                "report this",
            ));
            return out;
        }
    };
    let wait = Duration::from_secs(timeout);
    for (mqtt, security) in crate::publish::roundtrip::each_broker(&config.mqtt, &security) {
        let at = format!("{}:{}", mqtt.host, mqtt.port);
        let trip = crate::publish::roundtrip::round_trip(&mqtt, &security, &identity, wait);
        out.push(match rt.block_on(trip) {
            Ok(r) => Check::ok(format!(
                "broker {}{}: publish allowed, round trip {:.2} ms, MQTT {}{}",
                r.broker,
                if r.tls { " (TLS)" } else { "" },
                r.round_trip.as_secs_f64() * 1000.0,
                r.protocol,
                r.max_packet
                    .map_or_else(String::new, |n| format!(", messages up to {n} bytes")),
            )),
            Err(e) => Check::fail(
                format!("broker {at}: {e}"),
                "see `vigil mqtt-test` and docs/diagnostics.md",
            ),
        });
    }
    out
}

fn storage(config: &Config, resolve: &dyn Fn(&Path) -> PathBuf, min_free_gib: f64) -> Vec<Check> {
    let dir = resolve(&config.storage.state_dir);
    let probe = dir.join(format!(".vigil-doctor-{}", std::process::id()));
    let writable = std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::write(&probe, b"x"))
        .and_then(|_| std::fs::remove_file(&probe));
    let mut out = Vec::new();
    if let Err(e) = writable {
        out.push(unwritable(&dir, &e));
        return out;
    }
    out.extend(outbox_file(&dir.join("outbox.db")));
    let need = config.outbox.max_bytes.0 as f64 + min_free_gib * f64::from(1u32 << 30);
    match crate::telemetry::disk_free(&dir) {
        Some(free) if (free as f64) < need => out.push(Check::warn(
            format!(
                "state folder {}: {} free, below the outbox bound ({}) + {min_free_gib} GiB",
                dir.display(),
                super::status::human_bytes(free),
                super::status::human_bytes(config.outbox.max_bytes.0)
            ),
            "free space on that file system, or lower outbox.max_bytes",
        )),
        Some(free) => out.push(Check::ok(format!(
            "state folder {} writable, {} free",
            dir.display(),
            super::status::human_bytes(free)
        ))),
        None => out.push(Check::warn(
            format!("state folder {}: free space unknown", dir.display()),
            "check `df` by hand",
        )),
    }
    out
}

/// The check for a state folder a file cannot be written in, naming the cause.
fn unwritable(dir: &Path, e: &std::io::Error) -> Check {
    use std::io::ErrorKind;
    let dir = dir.display();
    match e.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => Check::fail(
            format!("state folder {dir}: its file system is full ({e})"),
            "free space there (`df -h`, `du -xsh /var/*`); until then the agent keeps its outbox in memory: fire and smoke still go out, but a restart loses what was not delivered",
        ),
        ErrorKind::ReadOnlyFilesystem => Check::fail(
            format!("state folder {dir}: its file system is read-only ({e})"),
            "remount it read-write, or point storage.state_dir at a writable file system",
        ),
        _ => Check::fail(
            format!("state folder {dir} is not writable: {e}"),
            "create it owned by the vigil user (systemd's StateDirectory=vigil does)",
        ),
    }
}

/// The outbox file, read without writing: readable, intact, how much waits.
fn outbox_file(path: &Path) -> Option<Check> {
    if !path.exists() {
        return None;
    }
    let shown = path.display();
    Some(match crate::publish::inspect::Inspect::open(path) {
        Ok(db) => match db.stats() {
            Ok(lanes) => {
                let waiting: u64 = lanes.iter().map(|l| l.rows).sum();
                Check::ok(format!(
                    "outbox {shown} readable, {waiting} message(s) waiting"
                ))
            }
            Err(e) => Check::fail(
                format!("outbox {shown}: {e}"),
                "see docs/operations.md (outbox): a damaged file is moved aside at the next start",
            ),
        },
        Err(e) => Check::fail(
            format!("outbox {shown}: {e}"),
            "check the file's owner and mode (the vigil user must read and write it and its folder)",
        ),
    })
}

/// Whether the box's clock is synchronised, as systemd (timedatectl) or chrony says.
fn clock() -> Check {
    let ask = |cmd: &str, args: &[&str]| {
        std::process::Command::new(cmd)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let fix = "enable time synchronisation (systemctl enable --now systemd-timesyncd, or chrony) with an NTP server the box can reach";
    if let Some(v) = ask("timedatectl", &["show", "-p", "NTPSynchronized", "--value"]) {
        return if v == "yes" {
            Check::ok("clock synchronised (NTP, timedatectl)")
        } else {
            Check::fail(
                "clock NOT synchronised (timedatectl: NTPSynchronized=no); incident times would be wrong",
                fix,
            )
        };
    }
    if let Some(v) = ask("chronyc", &["-n", "tracking"]) {
        return if v.contains("Normal") {
            Check::ok("clock synchronised (chrony)")
        } else {
            Check::fail("clock NOT synchronised (chronyc tracking)", fix)
        };
    }
    Check::warn(
        "clock: cannot tell whether it is synchronised (neither timedatectl nor chronyc answers)",
        fix,
    )
}

fn service(config: &Config, resolve: &dyn Fn(&Path) -> PathBuf) -> Vec<Check> {
    let mut out = Vec::new();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let user = passwd
        .lines()
        .find(|l| l.starts_with("vigil:"))
        .map(str::to_string);
    match user {
        Some(_) => out.push(Check::ok("service user vigil exists")),
        None => out.push(Check::warn(
            "service user vigil does not exist",
            "install the vigil package (it creates the user), or run systemd-sysusers with systemd/vigil.sysusers",
        )),
    }
    if config.diag.enabled {
        let socket = resolve(&config.diag.socket);
        let dir = socket.parent().map(Path::to_path_buf).unwrap_or_default();
        if socket.exists() {
            out.push(Check::ok(format!(
                "diagnostics socket {} present (an agent is running)",
                socket.display()
            )));
        } else if dir.is_dir() {
            out.push(Check::ok(format!(
                "diagnostics socket folder {} exists",
                dir.display()
            )));
        } else {
            out.push(Check::warn(
                format!("diagnostics socket folder {} does not exist yet", dir.display()),
                "systemd creates it (RuntimeDirectory=vigil); when running by hand, create it writable by the agent",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_marks_each_check_and_sums_up() {
        let checks = vec![
            Check::ok("configuration valid"),
            Check::warn("clock: unknown", "enable NTP"),
            Check::fail("camera gate: connection refused", "fix the camera"),
        ];
        let text = render(&checks);
        assert!(text.contains("✓ configuration valid"), "{text}");
        assert!(
            text.contains("! clock: unknown\n    fix: enable NTP"),
            "{text}"
        );
        assert!(text.contains("✗ camera gate"), "{text}");
        assert!(text.ends_with("1 failure(s), 1 warning(s)\n"), "{text}");
        assert!(render(&checks[..1]).ends_with("all checks passed\n"));
    }

    #[test]
    fn unsigned_arm_disarm_and_config_are_warned_about() {
        let mut config: crate::config::Config =
            toml::from_str("[device]\nid = \"b\"\ndistrict = \"d\"\n[mqtt]\nhost = \"h\"\n")
                .expect("config");
        assert!(commands(&config).is_none(), "commands off: nothing to say");
        config.commands.enabled = true;
        let unsigned = commands(&config).expect("a check");
        assert_eq!(unsigned.status, Status::Warn);
        assert!(
            unsigned.what.contains("clip, arm, disarm are taken"),
            "{}",
            unsigned.what
        );
        config.commands.public_keys = vec!["k".into()];
        let signed = commands(&config).expect("a check");
        assert_eq!(signed.status, Status::Ok);
        assert!(signed.what.contains("signed (1 key(s))"), "{}", signed.what);
        config.commands.public_keys.clear();
        config.commands.allow = vec!["ping".into()];
        assert_eq!(commands(&config).map(|c| c.status), Some(Status::Ok));
    }
}
