//! The state folder on a full file system, on real components: a 1 MiB tmpfs mounted as the
//! agent's state folder and filled to the last byte, a real mosquitto, the FURG fire clip served
//! by GStreamer's RTSP server, the real binary with the built-in fire detector. The agent must
//! start and keep running, fire must get out, health and `vigil doctor` must name the problem,
//! and once space is back the outbox must be durable again. Mounting needs root: elsewhere the
//! test says so and does nothing (CI runs it as root).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vigil_demo::rtsp::{Clip, RtspServer};
use vigil_tests::{Mosquitto, Received, Recorder, TempDir, fixture, run_cli, vigil_bin};

/// A tmpfs mounted at a folder, unmounted (lazily, the agent may still hold files) on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> anyhow::Result<Tmpfs> {
        std::fs::create_dir_all(at)?;
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(at)
            .status()?;
        anyhow::ensure!(
            status.success(),
            "mount -t tmpfs failed on {}",
            at.display()
        );
        Ok(Tmpfs(at.to_path_buf()))
    }

    /// Write a filler file until the file system refuses a single byte more.
    fn fill(&self) -> anyhow::Result<u64> {
        let mut f = std::fs::File::create(self.0.join("filler"))?;
        let chunk = vec![0x5a; 4096];
        let mut written = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => return Err(e.into()),
            }
        }
        while f.write(&[1]).is_ok_and(|n| n == 1) {
            written += 1;
        }
        Ok(written)
    }

    fn free(&self) -> anyhow::Result<()> {
        std::fs::remove_file(self.0.join("filler"))?;
        Ok(())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn latest_outbox(msgs: &[Received]) -> serde_json::Value {
    msgs.iter()
        .rev()
        .find(|m| m.topic.ends_with("/health"))
        .map(|m| m.json()["outbox"].clone())
        .unwrap_or_default()
}

fn fire_opened(msgs: &[Received]) -> bool {
    msgs.iter()
        .filter(|m| m.topic == "vigil/v1/t1/fire-box-001/incidents/hill")
        .map(Received::json)
        .any(|v| v["type"] == "fire" && v["state"] == "open")
}

#[test]
fn a_full_state_folder_keeps_fire_going_out_and_says_so() -> anyhow::Result<()> {
    if rustix::process::geteuid().as_raw() != 0 {
        println!(
            "skipped: mounting a tmpfs for the state folder needs root (CI runs this as root)"
        );
        return Ok(());
    }
    vigil_tests::init_logs();
    let dir = TempDir::new("full-disk")?;
    let disk = Tmpfs::mount(&dir.join("state"), "1m")?;
    let filled = disk.fill()?;
    println!("state folder filled with {filled} bytes");
    let broker = Mosquitto::start()?;
    let clip = Arc::new(Clip::load(&fixture("furg_house6_fire_smoke_cc0.mp4"))?);
    let server = RtspServer::start(&[("hill", clip)])?;
    let cfg = dir.join("vigil.toml");
    std::fs::write(
        &cfg,
        vigil_tests::scene::fire_config(broker.port, &[("hill", server.url("hill"))]),
    )?;
    let recorder = Recorder::start(broker.port, "vigil/v1/#")?;
    let log = dir.join("agent.log");
    let mut agent = vigil_tests::spawn_agent(vigil_bin!(), &cfg, &log)?;
    let agent_log = || std::fs::read_to_string(&log).unwrap_or_default();

    // 1. Started on a full disk: the outbox is in memory, fire goes out, health says why.
    let got = recorder
        .wait_for(
            Duration::from_secs(120),
            "a fire open and a health message saying the outbox is not durable",
            |m| fire_opened(m) && latest_outbox(m)["durable"] == false,
        )
        .map_err(|e| anyhow::anyhow!("{e}\n{}", agent_log()))?;
    let outbox = latest_outbox(&got);
    let why = outbox["store_error"].as_str().unwrap_or_default();
    assert!(
        why.contains("full"),
        "store_error names the full disk: {outbox}"
    );
    assert!(outbox["not_durable"].as_u64() > Some(0), "{outbox}");
    assert!(
        !dir.join("state")
            .read_dir()?
            .any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().contains("corrupt"))),
        "nothing was set aside as corrupt"
    );
    assert!(agent.running(), "the agent keeps running");

    // 2. The technician's tool names the problem.
    let (_, out, err) = run_cli(
        vigil_bin!(),
        &[
            "doctor",
            "--config",
            cfg.to_str().unwrap_or_default(),
            "--timeout",
            "3",
        ],
    )?;
    assert!(
        out.contains("file system is full"),
        "vigil doctor names the full disk:\n{out}\n{err}"
    );

    // 3. Space back: the outbox goes back to its file (tried every 30 s once memory is empty).
    disk.free()?;
    let later = recorder
        .wait_for(
            Duration::from_secs(90),
            "health saying durable again",
            |m| latest_outbox(m)["durable"] == true,
        )
        .map_err(|e| anyhow::anyhow!("{e}\n{}", agent_log()))?;
    assert!(dir.join("state/outbox.db").exists());

    // 4. Full again while running: whatever the file can still take is stored, the rest goes
    // out from memory; either way the agent runs and health keeps coming.
    disk.fill()?;
    let n = later.len();
    recorder
        .wait_for(Duration::from_secs(60), "five more health messages", |m| {
            m[n.min(m.len())..]
                .iter()
                .filter(|x| x.topic.ends_with("/health"))
                .count()
                >= 5
        })
        .map_err(|e| anyhow::anyhow!("{e}\n{}", agent_log()))?;
    assert!(agent.running(), "the agent keeps running");
    let all = recorder.snapshot();
    // Each seq names one event (a repeat is a redelivery of the same one), and none is skipped.
    let mut by_seq = std::collections::BTreeMap::new();
    for m in &all {
        if m.topic.starts_with("vigil/v1/t1/fire-box-001/incidents/")
            && !m.topic.ends_with("/snapshot")
        {
            let v = m.json();
            let event = (
                v["id"].to_string(),
                v["state"].to_string(),
                v["frame_time"].to_string(),
            );
            if let Some(seq) = v["seq"].as_u64() {
                let first = by_seq.entry(seq).or_insert_with(|| event.clone());
                assert_eq!(*first, event, "seq {seq} was given to two events");
            }
        }
    }
    let seqs: Vec<u64> = by_seq.keys().copied().collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "gap-free from 1"
    );
    let text = agent_log();
    assert!(!text.contains("panicked"), "{text}");
    assert!(text.contains("cannot use the outbox file"), "{text}");
    // `vigil doctor`'s round trip on `…/test` is its own, outside the agent's contract.
    let agent_messages: Vec<Received> = all
        .into_iter()
        .filter(|m| !m.topic.ends_with("/test"))
        .collect();
    let checked = vigil_tests::contract::Contract::load()?.check_all(&agent_messages)?;
    assert!(checked > 0);
    agent.terminate(Duration::from_secs(20))?;
    Ok(())
}
