//! The broker tier of `deploy/broker/` as shipped: a district broker and the city broker, each a
//! real mosquitto on loopback running the configuration `deploy/broker/render.sh` writes (TLS
//! listeners, passwords, per-device and per-role ACLs, persistence, the district's bridge to the
//! city over mutual TLS). The agent publishes real incidents from the plaza footage to the
//! district; a city consumer on a shared subscription receives them through the bridge, also
//! after the city broker was down for a minute; the ACLs keep a box to its own subtree and a
//! centre to its own district.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{Client, MqttOptions, QoS};
use vigil::demo::rtsp::{Clip, RtspServer};
use vigil_tests::certs::{ca, chmod, leaf, leaf_for};
use vigil_tests::scene::{config, first_seqs};
use vigil_tests::{
    Mosquitto, Proc, Received, Recorder, TempDir, fixture, free_port, mosquitto_users, repo,
    spawn_agent, vigil_bin,
};

/// The district broker and the city broker of district `t1` (the city also knows `t2`).
struct Tier {
    dir: TempDir,
    district: Mosquitto,
    city: Mosquitto,
    /// The city's consumer listener (the district's is `district.port`).
    city_port: u16,
}

const PASSWORD: &str = "pw with / and # and spaces";

/// `render.sh KIND OUT KEY=VALUE…`, checked.
fn render(kind: &str, out: &Path, vars: &[String]) -> anyhow::Result<()> {
    let status = Command::new(repo().join("deploy/broker/render.sh"))
        .arg(kind)
        .arg(out)
        .args(vars)
        .status()?;
    anyhow::ensure!(status.success(), "render.sh {kind} failed");
    Ok(())
}

/// Copy `from` (in `dir`) to `to` in `conf`, readable by the user mosquitto runs as.
fn place(dir: &Path, conf: &Path, from: &str, to: &str) -> anyhow::Result<()> {
    std::fs::copy(dir.join(from), conf.join(to))?;
    chmod(&conf.join(to), 0o644)
}

fn tier(tag: &str) -> anyhow::Result<Tier> {
    let dir = TempDir::new(tag)?;
    let d = dir.0.clone();
    ca(&d, "district")?;
    ca(&d, "city")?;
    leaf(&d, "district", "district-broker")?;
    leaf(&d, "city", "city-broker")?;
    // The bridge's client certificate: its common name is its user name at the city.
    leaf_for(&d, "city", "bridge-t1", "DNS:bridge-t1")?;
    let (dc, cc) = (d.join("district-conf"), d.join("city-conf"));
    for (conf, state) in [(&dc, "district-state"), (&cc, "city-state")] {
        std::fs::create_dir_all(conf)?;
        std::fs::create_dir_all(d.join(state))?;
        // mosquitto drops to its own user when started as root: it writes its state there.
        chmod(&d.join(state), 0o777)?;
    }
    place(&d, &dc, "district-ca.pem", "ca.pem")?;
    place(&d, &dc, "district-broker.pem", "broker.pem")?;
    place(&d, &dc, "district-broker.key", "broker.key")?;
    place(&d, &dc, "city-ca.pem", "city-ca.pem")?;
    place(&d, &dc, "bridge-t1.pem", "bridge.pem")?;
    place(&d, &dc, "bridge-t1.key", "bridge.key")?;
    place(&d, &cc, "city-ca.pem", "ca.pem")?;
    place(&d, &cc, "city-broker.pem", "broker.pem")?;
    place(&d, &cc, "city-broker.key", "broker.key")?;
    let users = ["test-box-001", "other-box", "centre-t1"];
    mosquitto_users(&dc.join("passwd"), &users.map(|u| (u, PASSWORD)))?;
    chmod(&dc.join("passwd"), 0o644)?;
    mosquitto_users(
        &cc.join("passwd"),
        &["city", "centre-t1", "centre-t2"].map(|u| (u, PASSWORD)),
    )?;
    chmod(&cc.join("passwd"), 0o644)?;

    let (city_port, bridge_port, district_port) = (free_port()?, free_port()?, free_port()?);
    let common = |conf: &Path, state: &str| {
        vec![
            "BIND=127.0.0.1".to_string(),
            format!("CONF_DIR={}", conf.display()),
            format!("STATE_DIR={}", d.join(state).display()),
        ]
    };
    let mut vars = common(&cc, "city-state");
    vars.extend([
        "DISTRICTS=t1 t2".into(),
        format!("PORT={city_port}"),
        format!("BRIDGE_PORT={bridge_port}"),
    ]);
    render("city", &cc, &vars)?;
    let mut vars = common(&dc, "district-state");
    vars.extend([
        "DISTRICT=t1".into(),
        format!("PORT={district_port}"),
        "CITY_HOST=127.0.0.1".into(),
        format!("CITY_BRIDGE_PORT={bridge_port}"),
    ]);
    render("district", &dc, &vars)?;
    let text = |c: &Path| std::fs::read_to_string(c.join("mosquitto.conf"));
    let city = Mosquitto::with_config(city_port, &text(&cc)?)?;
    let district = Mosquitto::with_config(district_port, &text(&dc)?)?;
    Ok(Tier {
        dir,
        district,
        city,
        city_port,
    })
}

impl Tier {
    /// A private file holding the password, for the agent and for [`vigil::publish::tls::load`].
    fn password_file(&self) -> anyhow::Result<PathBuf> {
        let f = self.dir.join("password");
        std::fs::write(&f, PASSWORD)?;
        chmod(&f, 0o600)?;
        Ok(f)
    }

    /// Options of a client `id` logging in as `user` on the city (`city`) or district broker.
    fn client(&self, city: bool, user: &str, id: &str) -> anyhow::Result<MqttOptions> {
        let (port, ca) = if city {
            (self.city_port, "city-ca.pem")
        } else {
            (self.district.port, "district-ca.pem")
        };
        let mqtt = vigil::config::Mqtt {
            username: Some(user.into()),
            password_file: Some(self.password_file()?),
            tls: Some(vigil::config::TlsSettings {
                ca_file: Some(self.dir.join(ca)),
                ..Default::default()
            }),
            ..Default::default()
        };
        let security = vigil::publish::tls::load(&mqtt, |p| p.to_path_buf())?;
        let mut opts = MqttOptions::new(id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(5));
        security.apply(&mut opts);
        Ok(opts)
    }

    /// A recorder logged in as `user` on `filter`; `kept` keeps its session (and so its queue)
    /// across a restart of the broker.
    fn recorder(
        &self,
        city: bool,
        user: &str,
        filter: &str,
        kept: bool,
    ) -> anyhow::Result<Recorder> {
        let mut opts = self.client(city, user, &format!("{user}-rec-{}", free_port()?))?;
        opts.set_clean_session(!kept);
        Recorder::start_opts(opts, filter)
    }

    /// The agent with the plaza camera, logged in as itself on the district broker over TLS.
    fn agent(&self, camera_url: &str) -> anyhow::Result<(Proc, PathBuf)> {
        let cfg = self.dir.join("vigil.toml");
        let mqtt = format!(
            "username = \"test-box-001\"\npassword_file = \"{pw}\"\n\n[mqtt.tls]\nca_file = \"{ca}\"\n",
            pw = self.password_file()?.display(),
            ca = self.dir.join("district-ca.pem").display(),
        );
        let text = config(self.district.port, camera_url, "")
            .replace("keep_alive_s = 5\n", &format!("keep_alive_s = 5\n{mqtt}"));
        std::fs::write(&cfg, text)?;
        let log = self.dir.join("agent.log");
        Ok((spawn_agent(vigil_bin!(), &cfg, &log)?, log))
    }
}

/// Publish one QoS 1 message as `opts`' client and wait until the client's queue drained.
fn publish(opts: MqttOptions, topic: &str, payload: &str) -> anyhow::Result<()> {
    let (client, mut conn) = Client::new(opts, 10);
    client.publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())?;
    let end = Instant::now() + Duration::from_secs(10);
    for ev in conn.iter() {
        match ev {
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => break,
            Err(e) => anyhow::bail!("{topic}: {e}"),
            _ if Instant::now() > end => anyhow::bail!("{topic}: no PUBACK"),
            _ => {}
        }
    }
    let _ = client.disconnect();
    Ok(())
}

#[test]
fn incidents_reach_the_city_through_the_bridge_and_a_city_outage_of_a_minute_loses_none()
-> anyhow::Result<()> {
    vigil_tests::init_logs();
    let mut t = tier("fleet-bridge")?;
    let clip = Arc::new(Clip::load(&fixture("plaza_25s.mp4"))?);
    let server = RtspServer::start(&[("plaza", clip)])?;
    let city = t.recorder(true, "city", "$share/city/vigil/v1/#", true)?;
    let centre = t.recorder(false, "centre-t1", "vigil/v1/t1/#", false)?;
    let (mut agent, log) = t.agent(&server.url("plaza"))?;
    let log = || std::fs::read_to_string(&log).unwrap_or_default();
    city.wait_for(Duration::from_secs(90), "two incidents at the city", |m| {
        first_seqs(m).len() >= 2
    })
    .map_err(|e| anyhow::anyhow!("{e}\n{}", log()))?;

    // The city broker stops for a minute while the district keeps receiving incidents.
    t.city.stop()?;
    let before = first_seqs(&centre.snapshot()).len();
    std::thread::sleep(Duration::from_secs(60));
    let during = first_seqs(&centre.snapshot()).len() - before;
    assert!(during > 0, "no incident during the outage:\n{}", log());
    t.city.restart()?;
    let back = Instant::now();
    agent.terminate(Duration::from_secs(30))?;
    let db = rusqlite::Connection::open(t.dir.join("state/outbox.db"))?;
    let produced: i64 =
        db.query_row("SELECT value FROM meta WHERE key = 'seq'", [], |r| r.get(0))?;
    let produced = produced as u64;
    let all_there = |m: &[Received]| {
        let got: BTreeSet<u64> = first_seqs(m).into_iter().collect();
        (1..=produced).all(|s| got.contains(&s))
    };
    centre.wait_for(
        Duration::from_secs(30),
        "every seq at the district",
        all_there,
    )?;
    let got = city.wait_for(Duration::from_secs(60), "every seq at the city", all_there)?;
    let order = first_seqs(&got);
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "first arrivals at the city out of order: {order:?}"
    );
    eprintln!(
        "bridge: {produced} incident events, {during} during the city's 60 s outage, all at the city in order {:.1} s after it returned",
        back.elapsed().as_secs_f64()
    );
    let n = vigil_tests::contract::Contract::load()?.check_all(&got)?;
    assert!(n > 0);
    Ok(())
}

#[test]
fn the_acls_keep_a_box_to_its_subtree_and_a_centre_to_its_district() -> anyhow::Result<()> {
    let t = tier("fleet-acl")?;
    let centre = t.recorder(false, "centre-t1", "vigil/v1/t1/#", false)?;
    let city = t.recorder(true, "city", "vigil/v1/#", false)?;
    let stranger = t.recorder(true, "centre-t2", "vigil/v1/t1/#", false)?;
    let box_opts = || t.client(false, "test-box-001", "test-box-001");

    // A box publishes outside its subtree (another box's, another district's): refused; then
    // inside it: delivered, at the district and through the bridge at the city.
    publish(
        box_opts()?,
        "vigil/v1/t1/other-box/health",
        "{\"forged\":1}",
    )?;
    publish(
        box_opts()?,
        "vigil/v1/t2/test-box-001/health",
        "{\"forged\":2}",
    )?;
    publish(
        box_opts()?,
        "vigil/v1/t1/test-box-001/health",
        "{\"own\":true}",
    )?;
    let own = |m: &[Received]| {
        m.iter()
            .any(|r| r.topic == "vigil/v1/t1/test-box-001/health")
    };
    centre.wait_for(Duration::from_secs(10), "the box's own message", own)?;
    city.wait_for(
        Duration::from_secs(20),
        "the box's own message at the city",
        own,
    )?;
    let forged = |m: &[Received]| {
        m.iter()
            .filter(|r| r.payload.starts_with(b"{\"forged"))
            .count()
    };
    assert_eq!(
        forged(&centre.snapshot()),
        0,
        "a forged message was delivered"
    );
    assert_eq!(
        forged(&city.snapshot()),
        0,
        "a forged message reached the city"
    );

    // Another district's centre reads nothing of t1 and cannot command its boxes; t1's centre
    // commands them through the city (down the bridge).
    let ping = "vigil/v1/t1/test-box-001/cmd/ping";
    publish(
        t.client(true, "centre-t2", "centre-t2-pub")?,
        ping,
        "{\"from\":\"t2\"}",
    )?;
    publish(
        t.client(true, "centre-t1", "centre-t1-pub")?,
        ping,
        "{\"from\":\"t1\"}",
    )?;
    let cmd = |m: &[Received], who: &str| {
        m.iter()
            .filter(|r| {
                r.topic == ping && r.payload == format!("{{\"from\":\"{who}\"}}").as_bytes()
            })
            .count()
    };
    centre.wait_for(
        Duration::from_secs(20),
        "t1's command down the bridge",
        |m| cmd(m, "t1") > 0,
    )?;
    assert_eq!(
        cmd(&centre.snapshot(), "t2"),
        0,
        "t2's centre commanded a t1 box"
    );
    assert!(
        stranger.snapshot().is_empty(),
        "t2's centre read t1's traffic: {:?}",
        stranger
            .snapshot()
            .iter()
            .map(|r| &r.topic)
            .collect::<Vec<_>>()
    );
    Ok(())
}
