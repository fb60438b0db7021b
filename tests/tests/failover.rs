//! `mqtt.brokers`: the agent on the first of two real mosquitto brokers, the first cut off and
//! killed while incidents flow, the agent carrying on on the second, then going back to the
//! first once it returns. Every incident event the agent numbered reaches one of the two
//! brokers' subscribers, each broker's in order; health says which broker carried it.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use vigil_tests::scene::{Scene, config, first_seqs, incidents};
use vigil_tests::{Mosquitto, Received, Recorder, vigil_bin};

/// The last health message's `broker.address`, if any health message carried one.
fn health_broker(m: &[Received]) -> Option<String> {
    m.iter()
        .rev()
        .filter(|m| m.topic.ends_with("/health"))
        .find_map(|m| m.json()["broker"]["address"].as_str().map(str::to_string))
}

fn last_seq(state: &Path) -> anyhow::Result<u64> {
    let db = rusqlite::Connection::open(state.join("outbox.db"))?;
    let seq: i64 = db.query_row("SELECT value FROM meta WHERE key = 'seq'", [], |r| r.get(0))?;
    Ok(seq as u64)
}

#[test]
fn the_agent_fails_over_to_the_second_broker_and_back_losing_nothing() -> anyhow::Result<()> {
    let second = Mosquitto::start()?;
    let on_second = Recorder::start(second.port, "vigil/v1/#")?;
    let b = second.port;
    // The first broker is reached through a relay, so that the network to it can be cut
    // before it is killed: what it acknowledged has reached its subscriber by then.
    let mut scene = Scene::start_custom(
        vigil_bin!(),
        "failover",
        Path::new("plaza_25s.mp4"),
        Mosquitto::start()?,
        true,
        |a, url| {
            config(a, url, "").replace(
                &format!("host = \"127.0.0.1\"\nport = {a}\n"),
                &format!(
                    "failback_s = 5\nbrokers = [{{ host = \"127.0.0.1\", port = {a} }}, {{ host = \"127.0.0.1\", port = {b} }}]\n"
                ),
            )
        },
    )?;
    let first = scene.proxy.as_ref().map(|p| p.port).unwrap_or_default();
    let first_addr = format!("127.0.0.1:{first}");
    let second_addr = format!("127.0.0.1:{b}");
    scene.wait("two incident events and health on the first broker", |m| {
        incidents(m).len() >= 2 && health_broker(m).as_deref() == Some(first_addr.as_str())
    })?;

    // The first broker goes away.
    if let Some(p) = &scene.proxy {
        p.cut();
    }
    std::thread::sleep(Duration::from_secs(1));
    scene.broker.kill();
    let moved = on_second.wait_for(
        Duration::from_secs(60),
        "incidents and health through the second broker",
        |m| incidents(m).len() >= 2 && health_broker(m).as_deref() == Some(second_addr.as_str()),
    );
    moved.map_err(|e| anyhow::anyhow!("{e}\n{}", scene.log()))?;
    assert!(
        scene.log().contains("cannot reach the MQTT broker"),
        "{}",
        scene.log()
    );

    // It comes back (empty): the agent returns to it within the failback period.
    let mark = scene.recorder.snapshot().len();
    scene.broker.restart()?;
    scene.recorder.wait_subscribed(2, Duration::from_secs(20))?;
    if let Some(p) = &scene.proxy {
        p.restore();
    }
    let back = scene.wait_for(
        Duration::from_secs(60),
        "health through the first broker again",
        |m| health_broker(&m[mark.min(m.len())..]).as_deref() == Some(first_addr.as_str()),
    );
    back.map_err(|e| anyhow::anyhow!("{e}\n{}", scene.log()))?;
    assert!(
        scene.log().contains("moving back to an earlier broker"),
        "{}",
        scene.log()
    );
    scene.wait("an incident through the first broker again", |m| {
        !incidents(&m[mark.min(m.len())..]).is_empty()
    })?;
    scene.agent.terminate(Duration::from_secs(30))?;

    // Nothing lost: every numbered event reached one of the two brokers' subscribers.
    let produced = last_seq(&scene.state)?;
    let all = || {
        let mut m = scene.recorder.snapshot();
        m.extend(on_second.snapshot());
        m
    };
    let complete = |m: &[Received]| {
        let got: BTreeSet<u64> = first_seqs(m).into_iter().collect();
        (1..=produced).all(|s| got.contains(&s))
    };
    let end = std::time::Instant::now() + Duration::from_secs(20);
    while !complete(&all()) && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
    }
    let got: BTreeSet<u64> = first_seqs(&all()).into_iter().collect();
    let missing: Vec<u64> = (1..=produced).filter(|s| !got.contains(s)).collect();
    assert!(missing.is_empty(), "lost seq {missing:?} of 1..={produced}");
    for (name, m) in [
        ("first", scene.recorder.snapshot()),
        ("second", on_second.snapshot()),
    ] {
        let order = first_seqs(&m);
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "{name} broker's first arrivals out of order: {order:?}"
        );
    }
    let on_b = first_seqs(&on_second.snapshot()).len();
    eprintln!(
        "failover: {produced} incident events, {on_b} of them through the second broker, none lost"
    );
    let contract = vigil_tests::contract::Contract::load()?;
    contract.check_all(&on_second.snapshot())?;
    scene.check_contract()?;
    Ok(())
}
