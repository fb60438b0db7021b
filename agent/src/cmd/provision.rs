//! `vigil provision`: write a configuration (default `/etc/vigil/vigil.toml`, mode 0640) and
//! the broker password file (0600) from flags, or from prompts for what the flags leave out
//! when run on a terminal; validate the result, run `doctor`, and say what to do next.
//! Passwords are read without echo (or from stdin with `--password-stdin`) and never printed.
//! `--json` prints one object on stdout (prompts, if any, stay on stderr): the files written,
//! whether the configuration is valid, doctor's own JSON report and the next steps; or
//! `{"ok":false,"error":…}`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{Value, json};

/// Arguments of `vigil provision`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the configuration.
    #[arg(long, value_name = "FILE", default_value = crate::config::DEFAULT_CONFIG)]
    out: PathBuf,
    /// Device id (unique in the city; also the MQTT client id).
    #[arg(long, value_name = "ID")]
    device_id: Option<String>,
    /// District id.
    #[arg(long, value_name = "ID")]
    district: Option<String>,
    /// Broker: `mqtt://HOST[:PORT]` (plain, 1883) or `mqtts://HOST[:PORT]` (TLS, 8883).
    #[arg(long, value_name = "URL")]
    broker: Option<String>,
    /// CA certificate that signs the broker's (TLS; default: the system's CAs).
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Client certificate (mutual TLS).
    #[arg(long, value_name = "FILE", requires = "key_file")]
    cert_file: Option<PathBuf>,
    /// Client key (mutual TLS; must be mode 600).
    #[arg(long, value_name = "FILE", requires = "cert_file")]
    key_file: Option<PathBuf>,
    /// Broker username (the password is prompted for, or read with --password-stdin).
    #[arg(long, value_name = "NAME")]
    username: Option<String>,
    /// Read the broker password from the first line of stdin.
    #[arg(long, requires = "username")]
    password_stdin: bool,
    /// A camera: `ID=RTSP_URL` (repeat for each). The URL may carry user:password@.
    #[arg(long = "camera", value_name = "ID=URL")]
    cameras: Vec<String>,
    /// Model card the cameras use.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/usr/share/vigil/models/ssd_mobilenet_v2_coco/model.toml"
    )]
    model_card: PathBuf,
    /// State folder (the outbox).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/vigil")]
    state_dir: PathBuf,
    /// The service user: run as root, the password file is given to it and the configuration
    /// to its group (`root:GROUP`), so the service can read both. Ignored when not root or when
    /// no such user exists (the steps printed at the end say what to do).
    #[arg(long, value_name = "USER", default_value = "vigil")]
    owner: String,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
    /// Do not run `vigil doctor` afterwards.
    #[arg(long)]
    no_doctor: bool,
    /// Print the outcome as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// What goes into the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Answers {
    /// Device id.
    pub device: String,
    /// District.
    pub district: String,
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// TLS on.
    pub tls: bool,
    /// CA file.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key.
    pub client: Option<(PathBuf, PathBuf)>,
    /// Username and the password file's path.
    pub auth: Option<(String, PathBuf)>,
    /// `(id, url)` per camera.
    pub cameras: Vec<(String, String)>,
    /// Model card.
    pub card: PathBuf,
    /// State folder.
    pub state_dir: PathBuf,
}

/// `mqtt[s]://host[:port]` → (host, port, tls).
pub fn parse_broker(url: &str) -> Result<(String, u16, bool), String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("mqtts://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("mqtt://") {
        (false, r)
    } else {
        return Err(format!(
            "broker \"{url}\" must start with mqtt:// or mqtts://"
        ));
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
            h.to_string(),
            p.parse::<u16>()
                .map_err(|_| format!("broker port \"{p}\" is not a number"))?,
        ),
        _ => (rest.to_string(), if tls { 8883 } else { 1883 }),
    };
    if host.is_empty() {
        return Err(format!("broker \"{url}\" has no host"));
    }
    Ok((
        host.trim_matches(|c| c == '[' || c == ']').to_string(),
        port,
        tls,
    ))
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

fn path_str(p: &Path) -> String {
    quote(&p.to_string_lossy())
}

/// The configuration text.
pub fn render(a: &Answers) -> String {
    let mut t = format!(
        "# Written by `vigil provision`. Every key: docs/config.md (or `man vigil-run`).\n\
         [device]\nid = {}\ndistrict = {}\n\n[mqtt]\nhost = {}\nport = {}\n",
        quote(&a.device),
        quote(&a.district),
        quote(&a.host),
        a.port
    );
    if let Some((user, file)) = &a.auth {
        t.push_str(&format!(
            "username = {}\npassword_file = {}\n",
            quote(user),
            path_str(file)
        ));
    }
    if a.tls {
        t.push_str("\n[mqtt.tls]\n");
        if let Some(ca) = &a.ca_file {
            t.push_str(&format!("ca_file = {}\n", path_str(ca)));
        }
        if let Some((cert, key)) = &a.client {
            t.push_str(&format!(
                "cert_file = {}\nkey_file = {}\n",
                path_str(cert),
                path_str(key)
            ));
        }
    }
    t.push_str(&format!(
        "\n[storage]\nstate_dir = {}\n\n[[models]]\nname = \"default\"\ncard = {}\n",
        path_str(&a.state_dir),
        path_str(&a.card)
    ));
    for (id, url) in &a.cameras {
        t.push_str(&format!(
            "\n[[cameras]]\nid = {}\nurl = {}\nmodel = \"default\"\n# Add zones and lines: docs/config.md; tune them with `vigil replay` and `vigil probe --out`.\n",
            quote(id),
            quote(url)
        ));
    }
    t
}

struct Prompter {
    interactive: bool,
}

impl Prompter {
    fn ask(&self, what: &str, given: Option<String>, missing: &mut Vec<String>) -> String {
        if let Some(v) = given {
            return v;
        }
        if !self.interactive {
            missing.push(what.to_string());
            return String::new();
        }
        eprint!("{what}: ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        line.trim().to_string()
    }
}

/// For a typed `ID=URL` without `user@`: ask for the camera's user and (hidden) password and put
/// them, percent-encoded, into the URL.
fn ask_camera_credentials(p: &Prompter, typed: String) -> Result<String, Refusal> {
    let Some((id, url)) = typed.split_once('=') else {
        return Ok(typed);
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return Ok(typed);
    };
    let authority = rest.split('/').next().unwrap_or("");
    if authority.contains('@') {
        return Ok(typed);
    }
    let user = p.ask(
        &format!("user for camera {id} (empty: none)"),
        None,
        &mut Vec::new(),
    );
    if user.is_empty() {
        return Ok(typed);
    }
    let password = read_hidden(&format!("password of {user} on camera {id} (not shown): "))
        .or_else(|e| refuse(2, format!("cannot read the password: {e}")))?;
    // An empty password is still written (`user:@`): GStreamer refuses `user@host`.
    let userinfo = format!("{}:{}", percent_encode(&user), percent_encode(&password));
    Ok(format!("{id}={scheme}://{userinfo}@{rest}"))
}

/// RFC 3986 percent-encoding of everything but unreserved characters (for URL userinfo).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Read a line from the terminal without echoing it.
fn read_hidden(prompt: &str) -> std::io::Result<String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let before = tcgetattr(&stdin)?;
    let mut quiet = before.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    // Echo goes off before the prompt shows, so nothing typed after it can be echoed.
    tcsetattr(&stdin, OptionalActions::Now, &quiet)?;
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let _ = tcsetattr(&stdin, OptionalActions::Now, &before);
    eprintln!();
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Create `path` with `mode` and `text` (refusing to replace it unless `force`), atomically: a
/// new file beside it, synced, then renamed over it, so that a crash or a full disk leaves the
/// old file or the new one, never half of one.
fn write_file(path: &Path, text: &str, mode: u32, force: bool) -> anyhow::Result<()> {
    if path.exists() && !force {
        anyhow::bail!("{} exists; use --force to replace it", path.display());
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    crate::config::write_atomic(path, text.as_bytes(), mode)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

/// Why provisioning stopped: exit code and the message.
struct Refusal(u8, String);

fn refuse<T>(code: u8, msg: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(code, msg.into()))
}

/// Ask, write, validate, check.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let json = args.json;
    match provision(&args) {
        Ok(code) => Ok(code),
        Err(Refusal(code, msg)) => {
            if json {
                println!("{}", json!({"ok": false, "error": msg}));
            } else {
                eprintln!("vigil provision: {msg}");
            }
            Ok(ExitCode::from(code))
        }
    }
}

/// Everything the flags and prompts say, checked; the password separately.
fn gather(args: &Args) -> Result<(Answers, Option<String>, PathBuf), Refusal> {
    let p = Prompter {
        interactive: std::io::stdin().is_terminal() && !args.password_stdin,
    };
    let mut missing = Vec::new();
    let device = p.ask(
        "device id (--device-id)",
        args.device_id.clone(),
        &mut missing,
    );
    let district = p.ask("district (--district)", args.district.clone(), &mut missing);
    let broker = p.ask(
        "broker, mqtt[s]://host[:port] (--broker)",
        args.broker.clone(),
        &mut missing,
    );
    let mut cameras = args.cameras.clone();
    if cameras.is_empty() && p.interactive {
        loop {
            let c = p.ask(
                "camera ID=RTSP_URL, credentials asked next (empty line when done)",
                None,
                &mut missing,
            );
            if c.is_empty() {
                break;
            }
            cameras.push(ask_camera_credentials(&p, c)?);
        }
    }
    if cameras.is_empty() {
        missing.push("at least one camera (--camera ID=URL)".into());
    }
    if !missing.is_empty() {
        return refuse(
            2,
            format!(
                "missing (not on a terminal, so not asked): {}",
                missing.join(", ")
            ),
        );
    }
    let (host, port, tls) = parse_broker(&broker).or_else(|e| refuse(2, e))?;
    let mut pairs = Vec::new();
    for c in &cameras {
        match c.split_once('=') {
            Some((id, url)) if !id.is_empty() && !url.is_empty() => {
                pairs.push((id.to_string(), url.to_string()));
            }
            _ => {
                return refuse(
                    2,
                    format!(
                        "camera \"{}\" must be ID=RTSP_URL",
                        crate::config::url::redact(c)
                    ),
                );
            }
        }
    }
    let dir = args.out.parent().map(Path::to_path_buf).unwrap_or_default();
    let secrets = dir.join("mqtt.password");
    let password = match &args.username {
        None => None,
        Some(_) if args.password_stdin => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .or_else(|e| refuse(2, format!("cannot read the password from stdin: {e}")))?;
            Some(line.trim_end_matches(['\n', '\r']).to_string())
        }
        Some(user) if p.interactive => Some(
            read_hidden(&format!("broker password for {user} (not shown): "))
                .or_else(|e| refuse(2, format!("cannot read the password: {e}")))?,
        ),
        Some(_) => {
            return refuse(
                2,
                "--username needs a password: on a terminal it is asked for, else give --password-stdin",
            );
        }
    };
    if password.as_deref() == Some("") {
        return refuse(2, "the broker password is empty");
    }
    let answers = Answers {
        device,
        district,
        host,
        port,
        tls: tls || args.ca_file.is_some() || args.cert_file.is_some(),
        ca_file: args.ca_file.clone(),
        client: args.cert_file.clone().zip(args.key_file.clone()),
        auth: args.username.clone().map(|u| (u, secrets.clone())),
        cameras: pairs,
        card: args.model_card.clone(),
        state_dir: args.state_dir.clone(),
    };
    Ok((answers, password, secrets))
}

/// The steps after provisioning, one per line (`owned`: the files already belong to the
/// service).
fn next_steps(config: &Path, secrets: Option<&Path>, owned: bool) -> Vec<String> {
    let mut steps = vec![format!(
        "add zones and lines to each camera in {} (docs/config.md); see them with `vigil probe --config {0} --camera ID --out cam.jpg`",
        config.display()
    )];
    if !owned {
        steps.push(match secrets {
            Some(s) => format!(
                "chown root:vigil {}; chown vigil:vigil {}",
                config.display(),
                s.display()
            ),
            None => format!("chown root:vigil {}", config.display()),
        });
    }
    steps.push("systemctl enable --now vigil; then `vigil status`".into());
    steps
}

/// The uid and gid of `user` from /etc/passwd, if it exists.
fn lookup_user(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[0] == user)
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .flatten()
    })
}

/// The name of group `gid` from /etc/group (its number when it has none).
fn group_name(gid: u32) -> String {
    std::fs::read_to_string("/etc/group")
        .ok()
        .and_then(|g| {
            g.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 3 && f[2] == gid.to_string()).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| gid.to_string())
}

/// Run as root with `user` present: the configuration becomes `root:<user's group>` and the
/// password file `user:<group>`, so the service reads both (and nobody else the password).
/// Returns the user and group names when done, `None` when not root or no such user.
fn give_to_service(
    user: &str,
    config: &Path,
    secrets: Option<&Path>,
) -> anyhow::Result<Option<(String, String)>> {
    if !rustix::process::geteuid().is_root() {
        return Ok(None);
    }
    let Some((uid, gid)) = lookup_user(user) else {
        return Ok(None);
    };
    let own = |path: &Path, uid: u32| {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .map_err(|e| anyhow::anyhow!("cannot give {} to {user}: {e}", path.display()))
    };
    own(config, 0)?;
    if let Some(s) = secrets {
        own(s, uid)?;
    }
    Ok(Some((user.to_string(), group_name(gid))))
}

fn provision(args: &Args) -> Result<ExitCode, Refusal> {
    let (answers, password, secrets) = gather(args)?;
    // Check both before writing either, so a refusal leaves nothing half-written.
    for (path, wanted) in [(&args.out, true), (&secrets, password.is_some())] {
        if wanted && path.exists() && !args.force {
            return refuse(
                1,
                format!("{} exists; use --force to replace it", path.display()),
            );
        }
    }
    if let Some(pw) = &password {
        write_file(&secrets, &format!("{pw}\n"), 0o600, args.force)
            .or_else(|e| refuse(1, e.to_string()))?;
    }
    // 0640: camera URLs may carry passwords; the service group reads it.
    write_file(&args.out, &render(&answers), 0o640, args.force)
        .or_else(|e| refuse(1, e.to_string()))?;
    let written_secrets = password.as_ref().map(|_| secrets.as_path());
    let owned = give_to_service(&args.owner, &args.out, written_secrets)
        .or_else(|e| refuse(1, e.to_string()))?;
    if !args.json {
        println!("wrote {} (mode 640)", args.out.display());
        if let Some(s) = written_secrets {
            println!("wrote {} (mode 600)", s.display());
        }
        if let Some((user, group)) = &owned {
            println!(
                "the service reads them: configuration root:{group}, password file {user}:{group}"
            );
        }
    }
    let mut report = json!({
        "ok": false,
        "config": args.out,
        "secrets": written_secrets,
        "valid": false,
        "doctor": Value::Null,
    });
    let built = crate::config::load(&args.out)
        .map_err(crate::agent::StartError::Config)
        .and_then(crate::agent::Plan::build);
    let plan = match built {
        Ok(p) => p,
        Err(e) => {
            let code = super::start_error_code(&e);
            let fix = format!(
                "the configuration is not valid yet: fix it, then `vigil check --config {}`",
                args.out.display()
            );
            if args.json {
                report["problems"] = json!(e.to_string());
                report["next"] = json!([fix]);
                println!("{report}");
            } else {
                eprintln!("vigil: {e}\n{fix}");
            }
            return Ok(code);
        }
    };
    let cfg = &plan.loaded.config;
    report["valid"] = json!(true);
    report["device"] = json!(cfg.device.id);
    report["district"] = json!(cfg.device.district);
    report["cameras"] = json!(cfg.cameras.iter().map(|c| &c.id).collect::<Vec<_>>());
    if !args.json {
        println!(
            "configuration valid: device {} in district {}, {} camera(s)",
            cfg.device.id,
            cfg.device.district,
            cfg.cameras.len()
        );
    }
    let mut ok = true;
    if !args.no_doctor {
        let (passed, doctor) = run_doctor(&args.out, args.json)?;
        ok = passed;
        report["doctor"] = doctor;
    }
    let next = next_steps(&args.out, written_secrets, owned.is_some());
    if args.json {
        report["ok"] = json!(ok);
        report["next"] = json!(next);
        println!("{report}");
    } else {
        println!("\nnext:");
        for (i, step) in next.iter().enumerate() {
            println!("  {}. {step}", i + 1);
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `vigil doctor --config FILE` as a child (its own output for people, its JSON for scripts):
/// whether it passed, and its report when `json`.
fn run_doctor(config: &Path, json: bool) -> Result<(bool, Value), Refusal> {
    let exe = std::env::current_exe()
        .or_else(|e| refuse(1, format!("cannot find the vigil executable: {e}")))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["doctor", "--config"]).arg(config);
    if !json {
        println!();
        let status = cmd
            .status()
            .or_else(|e| refuse(1, format!("cannot run vigil doctor: {e}")))?;
        return Ok((status.success(), Value::Null));
    }
    let out = cmd
        .arg("--json")
        .stderr(std::process::Stdio::inherit())
        .output()
        .or_else(|e| refuse(1, format!("cannot run vigil doctor: {e}")))?;
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(
        |e| json!({"ok": false, "error": format!("doctor printed no JSON report: {e}")}),
    );
    Ok((out.status.success(), report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_replaced_whole_with_their_mode_and_no_leftover() {
        use std::os::unix::fs::PermissionsExt;
        let dir =
            std::env::temp_dir().join(format!("vigil-provision-write-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("etc/mqtt.password");
        write_file(&path, "one\n", 0o600, false).expect("new file");
        let again = write_file(&path, "two\n", 0o600, false).expect_err("exists");
        assert!(again.to_string().contains("use --force"), "{again}");
        write_file(&path, "two\n", 0o600, true).expect("forced");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "two\n");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.join("etc"))
            .expect("dir")
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .expect("names");
        assert_eq!(names, ["mqtt.password"], "no temporary file left");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn broker_urls_give_host_port_and_tls() {
        assert_eq!(
            parse_broker("mqtt://b.local"),
            Ok(("b.local".into(), 1883, false))
        );
        assert_eq!(
            parse_broker("mqtts://b.local"),
            Ok(("b.local".into(), 8883, true))
        );
        assert_eq!(
            parse_broker("mqtts://10.0.0.2:9883/"),
            Ok(("10.0.0.2".into(), 9883, true))
        );
        assert_eq!(
            parse_broker("mqtt://[::1]:1884"),
            Ok(("::1".into(), 1884, false))
        );
        assert!(parse_broker("http://b").unwrap_err().contains("mqtt://"));
        assert!(
            parse_broker("mqtt://b:x")
                .unwrap_err()
                .contains("not a number")
        );
    }

    #[test]
    fn userinfo_is_percent_encoded() {
        assert_eq!(percent_encode("admin"), "admin");
        assert_eq!(percent_encode("p@ss:w/rd%é"), "p%40ss%3Aw%2Frd%25%C3%A9");
    }

    #[test]
    fn the_written_config_parses_and_quotes_what_it_must() {
        let a = Answers {
            device: "box-1".into(),
            district: "d7".into(),
            host: "broker".into(),
            port: 8883,
            tls: true,
            ca_file: Some("/etc/vigil/ca.pem".into()),
            client: None,
            auth: Some(("box-1".into(), "/etc/vigil/mqtt.password".into())),
            cameras: vec![("gate".into(), "rtsp://u:p\"q@10.0.0.5/s".into())],
            card: "/usr/share/vigil/models/m/model.toml".into(),
            state_dir: "/var/lib/vigil".into(),
        };
        let t = render(&a);
        let v: toml::Value = toml::from_str(&t).expect("valid TOML");
        assert_eq!(
            v["mqtt"]["tls"]["ca_file"].as_str(),
            Some("/etc/vigil/ca.pem")
        );
        assert_eq!(
            v["cameras"][0]["url"].as_str(),
            Some("rtsp://u:p\"q@10.0.0.5/s")
        );
        assert_eq!(
            v["mqtt"]["password_file"].as_str(),
            Some("/etc/vigil/mqtt.password")
        );
    }
}
