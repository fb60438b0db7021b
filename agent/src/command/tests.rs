//! Commands end to end inside the module: requests in, results and jobs out.

use super::*;
use serde_json::Map;

fn done(reply: Reply) -> Message {
    match reply {
        Reply::Done(m) => m,
        other => panic!("expected a result, got {other:?}"),
    }
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("vigil-cmd-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

const CTX: Context<'static> = Context {
    version: "9.9.9",
    uptime: Duration::from_secs(42),
    config_source: "x",
    cameras: &[],
};

fn snapshot_request(id: &str, camera: &str, now: SystemTime) -> String {
    let sent_at = rfc3339_ms(now);
    format!(r#"{{"id":"{id}","sent_at":"{sent_at}","camera":"{camera}"}}"#)
}

#[test]
fn a_snapshot_is_pictured_then_answered_once_even_when_repeated_meanwhile() {
    let dir = temp_dir("snap");
    let mut c = commands(&dir);
    let now = SystemTime::now();
    let topic = "vigil/v1/d1/box/cmd/snapshot";
    let id = uuid::Uuid::now_v7().to_string();
    let body = snapshot_request(&id, "gate", now);
    let Reply::Job(pending) = c.handle(topic, body.as_bytes(), &CTX, now) else {
        panic!("a snapshot to take");
    };
    assert!(matches!(&pending.job, Job::Snapshot { camera } if camera == "gate"));
    assert!(matches!(
        c.handle(topic, body.as_bytes(), &CTX, now),
        Reply::Later
    ));
    let jpeg = Jpeg {
        bytes: vec![0xFF, 0xD8, 0xFF, 0xD9],
        width: 4,
        height: 3,
    };
    let camera = "gate".to_string();
    let out = c.finish(pending, Ok(Finished::Picture { camera, jpeg }), now);
    assert_eq!(
        out.len(),
        3,
        "the picture, then the result for each of two requests"
    );
    let picture = format!("vigil/v1/d1/box/cameras/gate/snapshot/{id}");
    assert_eq!(
        (out[0].topic.as_str(), out[0].payload.len()),
        (&*picture, 4)
    );
    assert_eq!(out[1].payload, out[2].payload);
    let v: Value = serde_json::from_slice(&out[1].payload).expect("json");
    assert_eq!(v["ok"], true);
    assert_eq!(v["answer"]["topic"], picture);
    assert_eq!(
        (v["answer"]["bytes"].as_u64(), v["answer"]["width"].as_u64()),
        (Some(4), Some(4))
    );
    // Once done, a repeat gets the stored result and no second picture.
    assert_eq!(
        done(c.handle(topic, body.as_bytes(), &CTX, now)).payload,
        out[1].payload
    );
    // A failed snapshot carries its code; a request without a camera is refused.
    let other = uuid::Uuid::now_v7().to_string();
    let body = snapshot_request(&other, "x", now);
    let Reply::Job(pending) = c.handle(topic, body.as_bytes(), &CTX, now) else {
        panic!("a snapshot to take");
    };
    let out = c.finish(pending, Err(("unknown_camera", "no camera x".into())), now);
    let v: Value = serde_json::from_slice(&out[0].payload).expect("json");
    assert_eq!(
        (out.len(), v["error"]["code"].as_str()),
        (1, Some("unknown_camera"))
    );
    let body = format!(
        r#"{{"id":"{}","sent_at":"{}"}}"#,
        uuid::Uuid::now_v7(),
        rfc3339_ms(now)
    );
    let v: Value =
        serde_json::from_slice(&done(c.handle(topic, body.as_bytes(), &CTX, now)).payload)
            .expect("json");
    assert_eq!(v["error"]["code"], "bad_request");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn arming_a_zone_under_a_camera_wide_disarm_says_it_is_still_down_and_prune_drops_the_gone() {
    let dir = temp_dir("arm");
    let mut c = commands(&dir);
    let cameras = disarm::tests::cameras();
    let ctx = Context {
        cameras: &cameras,
        ..CTX
    };
    let now = SystemTime::now();
    let mut send = |command: &str, args: &str| -> Value {
        let body = format!(
            r#"{{"id":"{}","sent_at":"{}",{args}}}"#,
            uuid::Uuid::now_v7(),
            rfc3339_ms(now)
        );
        let topic = format!("vigil/v1/d1/box/cmd/{command}");
        let m = done(c.handle(&topic, body.as_bytes(), &ctx, now));
        serde_json::from_slice(&m.payload).expect("json")
    };
    send("disarm", r#""camera":"gate","zone":"door""#);
    send("disarm", r#""camera":"gate""#);
    let v = send("arm", r#""camera":"gate","zone":"door""#);
    assert_eq!(v["answer"]["armed"], false, "{v}");
    assert_eq!(v["answer"]["disarmed"][0]["target"], "camera");
    let (before, _) = c.disarms();
    // A reload without camera gate: its disarm goes.
    c.prune(&[]);
    let (after, all) = c.disarms();
    assert!(all.is_empty() && after > before);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unsigned_refusal_is_not_the_answer_a_signed_retry_of_the_same_id_gets() {
    let dir = temp_dir("signed");
    let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let settings = CommandSettings {
        enabled: true,
        public_keys: vec![signature::encode_key(key.verifying_key().as_bytes())],
        ..CommandSettings::default()
    };
    let identity = Identity {
        device: "box".into(),
        district: "d1".into(),
    };
    let cameras = disarm::tests::cameras();
    let mut c = Commands::new(settings, identity, &dir, &cameras);
    let ctx = Context {
        cameras: &cameras,
        ..CTX
    };
    let now = SystemTime::now();
    let topic = "vigil/v1/d1/box/cmd/disarm";
    let mut request: Map<String, Value> = serde_json::from_value(json!({
        "id": uuid::Uuid::now_v7().to_string(),
        "sent_at": rfc3339_ms(now),
        "camera": "gate",
    }))
    .expect("object");
    let code = |m: Message| {
        let v: Value = serde_json::from_slice(&m.payload).expect("json");
        v["error"]["code"].as_str().unwrap_or("ok").to_string()
    };
    let unsigned = serde_json::to_vec(&request).expect("json");
    assert_eq!(
        code(done(c.handle(topic, &unsigned, &ctx, now))),
        "unsigned"
    );
    request.insert("sig".into(), signature::sign(&key, topic, &request).into());
    let signed = serde_json::to_vec(&request).expect("json");
    assert_eq!(code(done(c.handle(topic, &signed, &ctx, now))), "ok");
    let _ = std::fs::remove_dir_all(&dir);
}

fn commands(dir: &Path) -> Commands {
    let identity = Identity {
        device: "box".into(),
        district: "d1".into(),
    };
    let settings = CommandSettings {
        enabled: true,
        ..CommandSettings::default()
    };
    Commands::new(settings, identity, dir, &[])
}

#[test]
fn a_ping_is_answered_once_and_a_repeat_gets_the_same_result() {
    let dir = std::env::temp_dir().join(format!("vigil-cmd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut c = commands(&dir);
    let now = SystemTime::now();
    let ctx = CTX;
    let id = uuid::Uuid::now_v7().to_string();
    let body = format!(r#"{{"id":"{id}","sent_at":"{}"}}"#, rfc3339_ms(now));
    let first = done(c.handle("vigil/v1/d1/box/cmd/ping", body.as_bytes(), &ctx, now));
    assert_eq!(first.topic, "vigil/v1/d1/box/cmd/ping/result");
    let v: Value = serde_json::from_slice(&first.payload).expect("json");
    assert_eq!(
        (v["ok"].as_bool(), v["id"].as_str()),
        (Some(true), Some(&*id))
    );
    assert_eq!(v["answer"]["uptime_s"], 42);
    assert_eq!(
        v["answer"]["config_sha256"].as_str().map(str::len),
        Some(64)
    );
    // Later, with another uptime: the stored result comes back unchanged.
    let later = Context {
        uptime: Duration::from_secs(99),
        ..ctx
    };
    let again = done(c.handle("vigil/v1/d1/box/cmd/ping", body.as_bytes(), &later, now));
    assert_eq!(again.payload, first.payload);
    // A refusal carries its code; one without an id still gets a result.
    let bad = done(c.handle("vigil/v1/d1/box/cmd/ping", b"{}", &ctx, now));
    let v: Value = serde_json::from_slice(&bad.payload).expect("json");
    assert_eq!(
        (v["ok"].as_bool(), v["error"]["code"].as_str()),
        (Some(false), Some("bad_request"))
    );
    assert!(v["id"].is_null());
    let _ = std::fs::remove_dir_all(&dir);
}
