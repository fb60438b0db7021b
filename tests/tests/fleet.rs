//! The broker tier of `deploy/broker/` as shipped ([`vigil_tests::tier`]): district brokers and
//! the city broker, each a real mosquitto on loopback running the configuration
//! `deploy/broker/render.sh` writes (TLS listeners, passwords, per-device and per-role ACLs,
//! persistence, each district's bridge to the city over mutual TLS). The agent publishes real incidents from the plaza footage to the
//! district; a city consumer on a shared subscription receives them through the bridge, also
//! after the city broker was down for a minute; with two districts and the city (three
//! brokers), the ACLs keep a box to its own subtree and a centre to its own district.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{Client, MqttOptions, QoS};
use vigil_demo::rtsp::{Clip, RtspServer};
use vigil_tests::scene::{config, first_seqs};
use vigil_tests::tier::{At, DistrictSpec, Tier};
use vigil_tests::{Proc, Received, fixture, spawn_agent, vigil_bin};

/// The tier of districts `t1` (boxes `test-box-001`, `other-box`) and, when `two`, `t2` (box
/// `t2-box`): two or three mosquittos.
fn tier(tag: &str, two: bool) -> anyhow::Result<Tier> {
    let spec = |id: &str, boxes: &[&str]| DistrictSpec {
        id: id.into(),
        boxes: boxes.iter().map(|b| b.to_string()).collect(),
    };
    let mut districts = vec![spec("t1", &["test-box-001", "other-box"])];
    if two {
        districts.push(spec("t2", &["t2-box"]));
    }
    Tier::start(tag, &districts)
}

/// The agent with the plaza camera, logged in as itself on t1's broker over TLS.
fn agent(t: &Tier, camera_url: &str) -> anyhow::Result<(Proc, PathBuf)> {
    let cfg = t.dir.join("vigil.toml");
    let mqtt = format!(
        "username = \"test-box-001\"\npassword_file = \"{pw}\"\n\n[mqtt.tls]\nca_file = \"{ca}\"\n",
        pw = t.password_file()?.display(),
        ca = t.dir.join("district-ca.pem").display(),
    );
    let text = config(t.districts[0].broker.port, camera_url, "")
        .replace("keep_alive_s = 5\n", &format!("keep_alive_s = 5\n{mqtt}"));
    std::fs::write(&cfg, text)?;
    let log = t.dir.join("agent.log");
    Ok((spawn_agent(vigil_bin!(), &cfg, &log)?, log))
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
    let mut t = tier("fleet-bridge", false)?;
    let clip = Arc::new(Clip::load(&fixture("plaza_25s.mp4"))?);
    let server = RtspServer::start(&[("plaza", clip)])?;
    let city = t.recorder(At::City, "city", "$share/city/vigil/v1/#", true)?;
    let centre = t.recorder(At::District(0), "centre-t1", "vigil/v1/t1/#", false)?;
    let (mut agent, log) = agent(&t, &server.url("plaza"))?;
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
    // Three brokers: districts t1 and t2, each bridged to the city.
    let t = tier("fleet-acl", true)?;
    let centre = t.recorder(At::District(0), "centre-t1", "vigil/v1/t1/#", false)?;
    let city = t.recorder(At::City, "city", "vigil/v1/#", false)?;
    let stranger = t.recorder(At::City, "centre-t2", "vigil/v1/t1/#", false)?;
    let own_centre = t.recorder(At::City, "centre-t2", "vigil/v1/t2/#", false)?;
    let nosy = t.recorder(At::City, "centre-t1", "vigil/v1/t2/#", false)?;
    let box_opts = || t.client(At::District(0), "test-box-001", "test-box-001");

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
    // The box of the other district, on its own broker.
    let t2_topic = "vigil/v1/t2/t2-box/health";
    publish(
        t.client(At::District(1), "t2-box", "t2-box")?,
        t2_topic,
        "{\"own\":\"t2\"}",
    )?;
    let has = |topic: &'static str| move |m: &[Received]| m.iter().any(|r| r.topic == topic);
    let own = has("vigil/v1/t1/test-box-001/health");
    centre.wait_for(Duration::from_secs(10), "the box's own message", own)?;
    city.wait_for(
        Duration::from_secs(20),
        "both districts' messages at the city",
        |m| own(m) && has(t2_topic)(m),
    )?;
    own_centre.wait_for(
        Duration::from_secs(20),
        "t2's message at t2's centre in the city",
        has(t2_topic),
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
        t.client(At::City, "centre-t2", "centre-t2-pub")?,
        ping,
        "{\"from\":\"t2\"}",
    )?;
    publish(
        t.client(At::City, "centre-t1", "centre-t1-pub")?,
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
    let topics = |r: &vigil_tests::Recorder| {
        r.snapshot()
            .iter()
            .map(|m| m.topic.clone())
            .collect::<Vec<_>>()
    };
    assert!(
        stranger.snapshot().is_empty(),
        "t2's centre read t1's traffic: {:?}",
        topics(&stranger)
    );
    assert!(
        nosy.snapshot().is_empty(),
        "t1's centre read t2's traffic: {:?}",
        topics(&nosy)
    );
    Ok(())
}
