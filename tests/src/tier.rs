//! The broker tier of `deploy/broker/` as shipped, started on loopback for the fleet tests and
//! `make fleet-bench`: one mosquitto per district and the city's mosquitto, each running exactly
//! the configuration `deploy/broker/render.sh` writes (TLS listeners, passwords, per-device and
//! per-role ACLs, persistence, each district's mutual-TLS bridge to the city), with
//! certificates and `mosquitto_passwd` logins made for each run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use rumqttc::MqttOptions;

use crate::certs::{ca, chmod, leaf, leaf_for};
use crate::{Mosquitto, Recorder, TempDir, free_port, mosquitto_users, repo};

/// Every login's password: it has the characters a careless template would break on.
pub const PASSWORD: &str = "pw with / and # and spaces";

/// A district to start: its id and the user names of its boxes (`centre-{id}` is added).
#[derive(Debug, Clone)]
pub struct DistrictSpec {
    /// District id (`t1`).
    pub id: String,
    /// Its boxes' user names (= device ids).
    pub boxes: Vec<String>,
}

/// One running district broker.
pub struct District {
    /// District id.
    pub id: String,
    /// Its broker (its TLS listener is `broker.port`).
    pub broker: Mosquitto,
}

/// A running tier: the city broker and a broker per district, bridged to it.
pub struct Tier {
    /// Certificates, configuration and state of every broker.
    pub dir: TempDir,
    /// The district brokers, in the order given.
    pub districts: Vec<District>,
    /// The city broker (`city.port` is its consumer listener: TLS and passwords).
    pub city: Mosquitto,
}

/// Which broker a client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// The city's consumer listener.
    City,
    /// The broker of district number `n` (in the order given to [`Tier::start`]).
    District(usize),
}

/// `render.sh KIND OUT KEY=VALUE…`, checked (its output is shown only when it fails).
pub fn render(kind: &str, out: &Path, vars: &[String]) -> anyhow::Result<()> {
    let o = Command::new(repo().join("deploy/broker/render.sh"))
        .arg(kind)
        .arg(out)
        .args(vars)
        .output()?;
    anyhow::ensure!(
        o.status.success(),
        "render.sh {kind} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    Ok(())
}

/// Copy `from` (in `dir`) to `to` in `conf`, readable by the user mosquitto runs as.
fn place(dir: &Path, conf: &Path, from: &str, to: &str) -> anyhow::Result<()> {
    std::fs::copy(dir.join(from), conf.join(to))?;
    chmod(&conf.join(to), 0o644)
}

/// A configuration folder `conf` and a state folder `state` under `dir` (mosquitto drops to its
/// own user when started as root and writes its state there).
fn folders(dir: &Path, conf: &str, state: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (c, s) = (dir.join(conf), dir.join(state));
    std::fs::create_dir_all(&c)?;
    std::fs::create_dir_all(&s)?;
    chmod(&s, 0o777)?;
    Ok((c, s))
}

/// The settings every rendered broker takes.
fn common(conf: &Path, state: &Path) -> Vec<String> {
    vec![
        "BIND=127.0.0.1".to_string(),
        format!("CONF_DIR={}", conf.display()),
        format!("STATE_DIR={}", state.display()),
    ]
}

/// A password file at `path` with `users`, all with [`PASSWORD`].
fn passwd(path: &Path, users: &[String]) -> anyhow::Result<()> {
    let pairs: Vec<(&str, &str)> = users.iter().map(|u| (u.as_str(), PASSWORD)).collect();
    mosquitto_users(path, &pairs)?;
    chmod(path, 0o644)
}

impl Tier {
    /// Render and start the city broker (knowing every district of `districts`) and each
    /// district's broker, bridged to it.
    pub fn start(tag: &str, districts: &[DistrictSpec]) -> anyhow::Result<Tier> {
        let dir = TempDir::new(tag)?;
        let d = dir.0.clone();
        ca(&d, "district")?;
        ca(&d, "city")?;
        leaf(&d, "district", "district-broker")?;
        leaf(&d, "city", "city-broker")?;
        let (cc, cs) = folders(&d, "city-conf", "city-state")?;
        place(&d, &cc, "city-ca.pem", "ca.pem")?;
        place(&d, &cc, "city-broker.pem", "broker.pem")?;
        place(&d, &cc, "city-broker.key", "broker.key")?;
        let mut users = vec!["city".to_string()];
        users.extend(districts.iter().map(|s| format!("centre-{}", s.id)));
        passwd(&cc.join("passwd"), &users)?;
        let (city_port, bridge_port) = (free_port()?, free_port()?);
        let ids: Vec<&str> = districts.iter().map(|s| s.id.as_str()).collect();
        let mut vars = common(&cc, &cs);
        vars.extend([
            format!("DISTRICTS={}", ids.join(" ")),
            format!("PORT={city_port}"),
            format!("BRIDGE_PORT={bridge_port}"),
        ]);
        render("city", &cc, &vars)?;
        let city = Mosquitto::with_config(city_port, &conf_text(&cc)?)?;
        let mut started = Vec::new();
        for spec in districts {
            let broker = district(&d, spec, bridge_port)?;
            started.push(District {
                id: spec.id.clone(),
                broker,
            });
        }
        Ok(Tier {
            dir,
            districts: started,
            city,
        })
    }

    /// A private file holding the password, for the agent and for [`vigil::publish::tls::load`].
    pub fn password_file(&self) -> anyhow::Result<PathBuf> {
        let f = self.dir.join("password");
        if !f.exists() {
            std::fs::write(&f, PASSWORD)?;
            chmod(&f, 0o600)?;
        }
        Ok(f)
    }

    /// The broker settings of a client logging in as `user` at `at`, over TLS.
    pub fn mqtt(&self, at: At, user: &str) -> anyhow::Result<vigil::config::Mqtt> {
        let (port, ca) = match at {
            At::City => (self.city.port, "city-ca.pem"),
            At::District(n) => {
                let d = self.districts.get(n).with_context(|| {
                    format!(
                        "no district number {n} (there are {})",
                        self.districts.len()
                    )
                })?;
                (d.broker.port, "district-ca.pem")
            }
        };
        Ok(vigil::config::Mqtt {
            host: "127.0.0.1".into(),
            port,
            username: Some(user.into()),
            password_file: Some(self.password_file()?),
            tls: Some(vigil::config::TlsSettings {
                ca_file: Some(self.dir.join(ca)),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    /// Options of a client `id` logging in as `user` at `at`.
    pub fn client(&self, at: At, user: &str, id: &str) -> anyhow::Result<MqttOptions> {
        let mqtt = self.mqtt(at, user)?;
        let security = vigil::publish::tls::load(&mqtt, |p| p.to_path_buf())?;
        let mut opts = MqttOptions::new(id, "127.0.0.1", mqtt.port);
        opts.set_keep_alive(Duration::from_secs(5));
        security.apply(&mut opts);
        Ok(opts)
    }

    /// A recorder logged in as `user` at `at` on `filter`; `kept` keeps its session (and so
    /// its queue) across a restart of the broker.
    pub fn recorder(
        &self,
        at: At,
        user: &str,
        filter: &str,
        kept: bool,
    ) -> anyhow::Result<Recorder> {
        let mut opts = self.client(at, user, &format!("{user}-rec-{}", free_port()?))?;
        opts.set_clean_session(!kept);
        Recorder::start_opts(opts, filter)
    }
}

fn conf_text(conf: &Path) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(conf.join("mosquitto.conf"))?)
}

/// Render and start the broker of district `spec` in `d`, bridged to the city's `bridge_port`.
fn district(d: &Path, spec: &DistrictSpec, bridge_port: u16) -> anyhow::Result<Mosquitto> {
    let id = &spec.id;
    // The bridge's client certificate: its common name is its user name at the city.
    let bridge = format!("bridge-{id}");
    leaf_for(d, "city", &bridge, &format!("DNS:{bridge}"))?;
    let (dc, ds) = folders(d, &format!("{id}-conf"), &format!("{id}-state"))?;
    place(d, &dc, "district-ca.pem", "ca.pem")?;
    place(d, &dc, "district-broker.pem", "broker.pem")?;
    place(d, &dc, "district-broker.key", "broker.key")?;
    place(d, &dc, "city-ca.pem", "city-ca.pem")?;
    place(d, &dc, &format!("{bridge}.pem"), "bridge.pem")?;
    place(d, &dc, &format!("{bridge}.key"), "bridge.key")?;
    let mut users = spec.boxes.clone();
    users.push(format!("centre-{id}"));
    passwd(&dc.join("passwd"), &users)?;
    let port = free_port()?;
    let mut vars = common(&dc, &ds);
    vars.extend([
        format!("DISTRICT={id}"),
        format!("PORT={port}"),
        "CITY_HOST=127.0.0.1".into(),
        format!("CITY_BRIDGE_PORT={bridge_port}"),
    ]);
    render("district", &dc, &vars)?;
    Mosquitto::with_config(port, &conf_text(&dc)?)
}
