//! `vigil provision` without a terminal: from flags and a password on stdin, into a temp folder,
//! validated and checked by doctor against a real camera server and broker.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use vigil_demo::rtsp::{Clip, RtspServer};
use vigil_tests::{Mosquitto, TempDir, fixture, repo, vigil_bin};

#[test]
fn provision_writes_a_valid_config_and_a_private_password_file() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let broker = Mosquitto::start()?;
    let server = RtspServer::start(&[("plaza", Arc::new(Clip::load(&fixture("plaza_25s.mp4"))?))])?;
    let dir = TempDir::new("provision")?;
    let out = dir.join("etc/vigil.toml");
    let card = repo().join("models/ssd_mobilenet_v2_coco/model.toml");
    let camera = server
        .url("plaza")
        .replacen("rtsp://", "rtsp://viewer:cam-Pass-3@", 1);
    let args = [
        "provision".to_string(),
        "--out".into(),
        out.to_string_lossy().into(),
        "--device-id".into(),
        "box-042".into(),
        "--district".into(),
        "d7".into(),
        "--broker".into(),
        format!("mqtt://127.0.0.1:{}", broker.port),
        "--username".into(),
        "box-042".into(),
        "--password-stdin".into(),
        "--camera".into(),
        format!("plaza={camera}"),
        "--model-card".into(),
        card.to_string_lossy().into(),
        "--state-dir".into(),
        dir.join("state").to_string_lossy().into(),
        // No such service user: the files stay the caller's, and the steps say to chown.
        "--owner".into(),
        "no-such-user-here".into(),
    ];
    let run = |args: &[String]| -> anyhow::Result<std::process::Output> {
        let mut child = Command::new(vigil_bin!())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(b"mqtt-Pass-4\n")?;
        }
        Ok(child.wait_with_output()?)
    };
    let done = run(&args)?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&done.stdout).to_string(),
        String::from_utf8_lossy(&done.stderr).to_string(),
    );
    eprintln!("{stdout}{stderr}");
    // doctor runs; with no clock service here it may warn, but nothing fails.
    assert!(done.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("configuration valid: device box-042 in district d7"),
        "{stdout}"
    );
    assert!(stdout.contains("✓ camera plaza: H264 768×576"), "{stdout}");
    assert!(stdout.contains("✓ broker 127.0.0.1"), "{stdout}");
    assert!(stdout.contains("next:"), "{stdout}");
    for secret in ["mqtt-Pass-4", "cam-Pass-3"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} printed"
        );
    }
    let pw = dir.join("etc/mqtt.password");
    assert_eq!(std::fs::read_to_string(&pw)?, "mqtt-Pass-4\n");
    assert_eq!(std::fs::metadata(&pw)?.permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&out)?.permissions().mode() & 0o777, 0o640);
    let (code, check, err) =
        vigil_tests::run_cli(vigil_bin!(), &["check", "--config", &out.to_string_lossy()])?;
    assert_eq!(code, 0, "{check}{err}");

    // For scripts: --json --force replaces both files and reports in one object. Run as root
    // with a service user that exists (`nobody` stands for `vigil`), the files are given to it.
    let mut forced = args.to_vec();
    let owner = forced.len() - 1;
    forced[owner] = "nobody".into();
    forced.extend(["--json".to_string(), "--force".to_string()]);
    let json_run = run(&forced)?;
    let out = String::from_utf8_lossy(&json_run.stdout).to_string();
    assert!(json_run.status.success(), "{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim())?;
    assert_eq!(v["ok"], true, "{out}");
    assert_eq!(v["valid"], true, "{out}");
    assert_eq!(v["device"], "box-042", "{out}");
    assert_eq!(v["cameras"], serde_json::json!(["plaza"]), "{out}");
    assert_eq!(v["secrets"], pw.to_string_lossy().as_ref(), "{out}");
    assert_eq!(v["doctor"]["ok"], true, "{out}");
    use std::os::unix::fs::MetadataExt;
    let root = std::fs::metadata("/proc/self")?.uid() == 0;
    let nobody = std::fs::read_to_string("/etc/passwd")?
        .lines()
        .find(|l| l.starts_with("nobody:"))
        .and_then(|l| {
            Some((
                l.split(':').nth(2)?.parse::<u32>().ok()?,
                l.split(':').nth(3)?.parse::<u32>().ok()?,
            ))
        });
    match (root, nobody) {
        (true, Some((uid, gid))) => {
            let (pw_meta, cfg_meta) = (
                std::fs::metadata(&pw)?,
                std::fs::metadata(dir.join("etc/vigil.toml"))?,
            );
            assert_eq!(
                (pw_meta.uid(), pw_meta.gid()),
                (uid, gid),
                "password file owner"
            );
            assert_eq!(
                (cfg_meta.uid(), cfg_meta.gid()),
                (0, gid),
                "configuration owner"
            );
            assert_eq!(pw_meta.permissions().mode() & 0o777, 0o600);
            assert!(
                v["next"].as_array().is_some_and(|n| n.len() == 2),
                "no chown step: {out}"
            );
        }
        _ => {
            eprintln!(
                "not root (or no user nobody): the owner of provisioned files is not checked"
            );
            assert!(v["next"].as_array().is_some_and(|n| n.len() == 3), "{out}");
        }
    }
    assert!(!out.contains("mqtt-Pass-4") && !out.contains("cam-Pass-3"));

    // A second run does not overwrite without --force; missing values are listed, not guessed.
    let again = run(&args)?;
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("use --force"));
    let bare = run(&[
        "provision".into(),
        "--out".into(),
        dir.join("x.toml").to_string_lossy().into(),
    ])?;
    assert_eq!(bare.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&bare.stderr).to_string();
    assert!(
        msg.contains("--device-id") && msg.contains("--broker") && msg.contains("--camera"),
        "{msg}"
    );
    let bare_json = run(&[
        "provision".into(),
        "--json".into(),
        "--out".into(),
        dir.join("x.toml").to_string_lossy().into(),
    ])?;
    assert_eq!(bare_json.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&bare_json.stdout)?;
    assert_eq!(v["ok"], false);
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains("--broker")),
        "{v}"
    );
    Ok(())
}

/// A pseudo-terminal: the child gets its slave side as stdin, stdout and stderr; the test
/// reads everything the terminal shows (prompts and echo) and types on the master side.
struct Terminal {
    master: std::fs::File,
    shown: Arc<std::sync::Mutex<String>>,
    cursor: usize,
}

impl Terminal {
    fn spawn(
        program: &std::path::Path,
        args: &[String],
    ) -> anyhow::Result<(std::process::Child, Terminal)> {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY)?;
        grantpt(&master)?;
        unlockpt(&master)?;
        let name = ptsname(&master, Vec::new())?;
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(name.to_str()?)?;
        // The Command (and with it the slave's copies) is dropped right after the spawn, so the
        // reader sees the terminal close when the child exits.
        let child = Command::new(program)
            .args(args)
            .stdin(slave.try_clone()?)
            .stdout(slave.try_clone()?)
            .stderr(slave)
            .spawn()?;
        let master = std::fs::File::from(master);
        let mut reader = master.try_clone()?;
        let shown = Arc::new(std::sync::Mutex::new(String::new()));
        let sink = shown.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        Ok((
            child,
            Terminal {
                master,
                shown,
                cursor: 0,
            },
        ))
    }

    fn text(&self) -> String {
        self.shown.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Wait (up to 60 s) until the terminal shows `what` after what was already matched.
    fn expect(&mut self, what: &str) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let text = self.text();
            if let Some(at) = text.get(self.cursor..).and_then(|t| t.find(what)) {
                self.cursor += at + what.len();
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                anyhow::bail!("the terminal never showed {what:?}; it showed:\n{text}");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn type_line(&mut self, line: &str) -> anyhow::Result<()> {
        self.master.write_all(format!("{line}\n").as_bytes())?;
        Ok(())
    }
}

#[test]
fn provision_asks_on_a_terminal_and_never_echoes_a_password() -> anyhow::Result<()> {
    let broker = Mosquitto::start()?;
    // The camera's password has characters that must be percent-encoded in the URL.
    let (cam_user, cam_pass) = ("viewer", "p@ss:w/rd%9");
    let server = vigil_demo::rtsp::RtspServer::start_with(
        0,
        &[("gate", Arc::new(Clip::load(&fixture("plaza_25s.mp4"))?))],
        &vigil_demo::rtsp::Extras {
            launches: &[],
            basic_auth: Some((cam_user, cam_pass)),
            ..Default::default()
        },
    )?;
    let dir = TempDir::new("provision-tty")?;
    let out = dir.join("vigil.toml");
    let card = repo().join("models/ssd_mobilenet_v2_coco/model.toml");
    let args = [
        "provision".to_string(),
        "--out".into(),
        out.to_string_lossy().into(),
        "--username".into(),
        "box-9".into(),
        "--model-card".into(),
        card.to_string_lossy().into(),
        "--state-dir".into(),
        dir.join("state").to_string_lossy().into(),
    ];
    let (mut child, mut tty) = Terminal::spawn(std::path::Path::new(vigil_bin!()), &args)?;
    tty.expect("device id (--device-id): ")?;
    tty.type_line("box-9")?;
    tty.expect("district (--district): ")?;
    tty.type_line("d3")?;
    tty.expect("broker, mqtt[s]://host[:port] (--broker): ")?;
    tty.type_line(&format!("mqtt://127.0.0.1:{}", broker.port))?;
    tty.expect("camera ID=RTSP_URL")?;
    tty.type_line(&format!("gate={}", server.url("gate")))?;
    tty.expect("user for camera gate (empty: none): ")?;
    tty.type_line(cam_user)?;
    tty.expect("(not shown): ")?;
    tty.type_line(cam_pass)?;
    tty.expect("camera ID=RTSP_URL")?;
    tty.type_line("")?;
    tty.expect("broker password for box-9 (not shown): ")?;
    tty.type_line("mqtt-Secret-7")?;
    let status = child.wait()?;
    // Let the reader drain what the child wrote last.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let shown = tty.text();
    eprintln!("{shown}");
    assert!(status.success(), "{shown}");
    // What was typed at visible prompts was echoed; the passwords were not, anywhere.
    assert!(
        shown.contains("box-9\r\n") && shown.contains("d3\r\n"),
        "{shown}"
    );
    for secret in [cam_pass, "mqtt-Secret-7", "p%40ss"] {
        assert!(!shown.contains(secret), "{secret} shown on the terminal");
    }
    // The credentials reached the camera (doctor got a frame through basic auth) and the file.
    assert!(shown.contains("✓ camera gate: H264 768×576"), "{shown}");
    assert!(shown.contains("next:"), "{shown}");
    let config = std::fs::read_to_string(&out)?;
    assert!(
        config.contains("rtsp://viewer:p%40ss%3Aw%2Frd%259@127.0.0.1:"),
        "{config}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("mqtt.password"))?,
        "mqtt-Secret-7\n"
    );
    Ok(())
}
