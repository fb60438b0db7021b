//! The MQTT contract's schemas (docs/schemas/) accept every example in docs/mqtt.md and refuse
//! payloads that break it. The integration tests validate every message they receive with the
//! same schemas (vigil_tests::contract).

use std::collections::BTreeSet;

use serde_json::json;
use vigil_tests::contract::Contract;
use vigil_tests::repo;

/// The ```json blocks of a markdown file.
fn json_blocks(md: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in md.lines() {
        match (&mut current, line.trim()) {
            (None, "```json") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

#[test]
fn every_example_in_the_mqtt_guide_validates() -> anyhow::Result<()> {
    let contract = Contract::load()?;
    let md = std::fs::read_to_string(repo().join("docs/mqtt.md"))?;
    let mut ids = BTreeSet::new();
    for (i, block) in json_blocks(&md).iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(block)
            .map_err(|e| anyhow::anyhow!("docs/mqtt.md example {i}: {e}\n{block}"))?;
        let mut id = v["schema"].as_str().unwrap_or_default().to_string();
        let validator = if id.is_empty() && v.get("sent_at").is_some() {
            id = "command request".into();
            contract.command_request()
        } else {
            contract
                .by_id(&id)
                .ok_or_else(|| anyhow::anyhow!("example {i} names no known schema: {block}"))?
        };
        Contract::check(validator, &v).map_err(|e| anyhow::anyhow!("example {i}: {e}\n{block}"))?;
        ids.insert(id);
    }
    let want: BTreeSet<String> = [
        "vigil.status/1",
        "vigil.camera-status/1",
        "vigil.incident/1",
        "vigil.health/1",
        "vigil.command-result/1",
        "vigil.clip/1",
        "command request",
    ]
    .map(String::from)
    .into();
    assert_eq!(ids, want, "every payload has an example");
    Ok(())
}

#[test]
fn a_command_result_is_either_an_answer_or_an_error() -> anyhow::Result<()> {
    let c = Contract::load()?;
    let v = c
        .by_id("vigil.command-result/1")
        .ok_or_else(|| anyhow::anyhow!("no schema"))?;
    let refused = json!({"schema": "vigil.command-result/1", "device": "b", "district": "d",
        "command": "ping", "id": null, "time": "2026-12-06T10:00:00.000Z", "ok": false,
        "error": {"code": "bad_request", "message": "the request is not a JSON object"}});
    assert!(Contract::check(v, &refused).is_ok());
    let with = |k: &str, val: serde_json::Value| {
        let mut x = refused.clone();
        x[k] = val;
        Contract::check(v, &x).is_err()
    };
    assert!(with("ok", json!(true)), "ok without an answer");
    assert!(
        with("error", json!({"code": "oops", "message": "x"})),
        "unknown code"
    );
    assert!(with("answer", json!({})), "an answer beside an error");
    let mut pong = refused.clone();
    if let Some(o) = pong.as_object_mut() {
        o.remove("error");
        o.insert("ok".into(), json!(true));
        o.insert("answer".into(), json!({"version": "1"}));
    }
    assert!(
        Contract::check(v, &pong).is_err(),
        "a ping answer names all it has"
    );
    Ok(())
}

fn incident() -> serde_json::Value {
    json!({
        "schema": "vigil.incident/1", "id": "01a22025-e096-7583-81fd-30002f1a8c91", "seq": 1,
        "device": "q1-box-001", "district": "q1", "camera": "plaza", "type": "intrusion",
        "severity": "major", "state": "open", "zone": "walkway", "track_id": 1,
        "frame_time": "2026-11-28T03:14:42.803Z", "opened_at": "2026-11-28T03:14:42.803Z",
        "objects": [{"label": "person", "class_id": 0, "score": 0.9, "box": [0.1, 0.2, 0.3, 0.4], "track_id": 1}],
        "model": {"name": "m", "version": "1"}
    })
}

#[test]
fn the_schemas_refuse_what_breaks_the_contract() -> anyhow::Result<()> {
    let c = Contract::load()?;
    let v = c
        .by_id("vigil.incident/1")
        .ok_or_else(|| anyhow::anyhow!("no schema"))?;
    assert!(Contract::check(v, &incident()).is_ok());
    let broken = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut x = incident();
        f(&mut x);
        Contract::check(v, &x).is_err()
    };
    assert!(broken(&|x| {
        x.as_object_mut().map(|o| o.remove("seq"));
    }));
    assert!(broken(&|x| x["seq"] = json!(0)), "seq starts at 1");
    assert!(broken(&|x| x["type"] = json!("explosion")));
    assert!(
        broken(&|x| x["frame_time"] = json!("2026-11-28 03:14:42")),
        "RFC 3339 ms UTC"
    );
    assert!(broken(&|x| x["id"] = json!("not-a-uuid")));
    assert!(
        broken(&|x| x["objects"][0]["box"] = json!([0.1, 0.2, 1.3, 0.4])),
        "normalised"
    );
    assert!(
        broken(&|x| x["objects"] = json!([])),
        "an open names its objects"
    );
    assert!(broken(&|x| x["extra"] = json!(1)), "no undocumented field");
    assert!(
        broken(&|x| {
            x["type"] = json!("fire");
            x["severity"] = json!("critical");
        }),
        "fire has no zone"
    );
    assert!(
        broken(&|x| {
            x["type"] = json!("fire");
            x["severity"] = json!("minor");
            x.as_object_mut().map(|o| o.remove("zone"));
        }),
        "fire is critical"
    );
    assert!(
        broken(&|x| {
            x["type"] = json!("line_crossing");
            x.as_object_mut().map(|o| o.remove("zone"));
            x["line"] = json!("gate");
        }),
        "a crossing has a direction"
    );
    let cam = c
        .by_id("vigil.camera-status/1")
        .ok_or_else(|| anyhow::anyhow!("no schema"))?;
    let offline = json!({"schema": "vigil.camera-status/1", "device": "d", "district": "q",
        "camera": "c", "state": "offline", "since": "2026-11-28T03:14:42.803Z"});
    assert!(
        Contract::check(cam, &offline).is_err(),
        "offline needs a reason"
    );
    // Topics route to their schema; unknown topics are refused.
    assert!(c.check_message("vigil/v1/q/d/unknown", b"{}").is_err());
    assert!(
        c.check_message("vigil/v1/q/d/incidents/c/x/snapshot", b"not a jpeg")
            .is_err()
    );
    Ok(())
}
