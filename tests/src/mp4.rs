//! Evidence clips as a centre receives them: chunks put back together and checked against
//! their announcement, and the MP4 file played by GStreamer (demuxed and decoded).

use std::path::Path;

use anyhow::{Context, bail};
use gstreamer as gst;
use gstreamer::prelude::*;

use crate::Received;

/// What playing a clip showed.
#[derive(Debug)]
pub struct Played {
    /// Frames decoded.
    pub frames: usize,
    /// Whether the first unit out of the demuxer is a key frame.
    pub starts_with_key: bool,
    /// Whether the decoded frames' presentation times rise one after the other.
    pub in_order: bool,
}

/// The file of the clip `answer` (a clip announcement or a clip command's answer) describes,
/// from its chunks among `got`, each checked against its sha256, and the whole file too.
pub fn assemble(got: &[Received], answer: &serde_json::Value) -> anyhow::Result<Vec<u8>> {
    let topic = answer["topic"].as_str().context("no topic")?;
    let chunks = answer["chunks"].as_array().context("no chunks")?;
    let mut file = Vec::new();
    for (n, c) in chunks.iter().enumerate() {
        let name = format!("{topic}/{n}");
        let part = got
            .iter()
            .find(|m| m.topic == name)
            .with_context(|| format!("chunk {name} did not arrive"))?;
        if c["sha256"] != vigil::hash::sha256_hex(&part.payload).as_str() {
            bail!("chunk {name}: its sha256 is not the announced one");
        }
        file.extend_from_slice(&part.payload);
    }
    if answer["sha256"] != vigil::hash::sha256_hex(&file).as_str() {
        bail!("the clip's sha256 is not the announced one");
    }
    Ok(file)
}

/// Whether every chunk of the clip `answer` describes has arrived in `got`.
pub fn complete(got: &[Received], answer: &serde_json::Value) -> bool {
    let (Some(topic), Some(n)) = (answer["topic"].as_str(), answer["chunks"].as_array()) else {
        return false;
    };
    (0..n.len()).all(|i| got.iter().any(|m| m.topic == format!("{topic}/{i}")))
}

/// Play the MP4 file at `path` with GStreamer: demux it, decode every frame.
pub fn play(path: &Path) -> anyhow::Result<Played> {
    gst::init()?;
    let location = path.to_string_lossy();
    let (first_key, _) = pull(
        &format!("filesrc location=\"{location}\" ! qtdemux ! appsink name=out sync=false"),
        true,
    )?;
    let (frames, in_order) = pull(
        &format!(
            "filesrc location=\"{location}\" ! qtdemux ! decodebin ! videoconvert ! appsink name=out sync=false"
        ),
        false,
    )?;
    Ok(Played {
        frames,
        starts_with_key: first_key == 1,
        in_order,
    })
}

/// Run `launch` to its end: the samples its appsink got (or with `first_key`, 1 when the first
/// was a key frame and 0 when not), and whether their presentation times rose.
fn pull(launch: &str, first_key: bool) -> anyhow::Result<(usize, bool)> {
    let pipeline = gst::parse::launch(launch)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let sink = pipeline
        .by_name("out")
        .context("no appsink")?
        .dynamic_cast::<gstreamer_app::AppSink>()
        .map_err(|_| anyhow::anyhow!("not an appsink"))?;
    pipeline.set_state(gst::State::Playing)?;
    let (mut n, mut last, mut in_order) = (0, None, true);
    while let Ok(sample) = sink.pull_sample() {
        let pts = sample.buffer().and_then(|b| b.pts());
        in_order &= pts.is_some() && pts > last;
        last = pts;
        if first_key {
            let key = sample
                .buffer()
                .is_some_and(|b| !b.flags().contains(gst::BufferFlags::DELTA_UNIT));
            n = usize::from(key);
            break;
        }
        n += 1;
    }
    pipeline.set_state(gst::State::Null)?;
    Ok((n, in_order))
}
