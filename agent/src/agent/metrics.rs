//! Copies the counters the pipeline already keeps (frames, decode errors, reconnects, camera
//! state) and the outbox gauges into the Prometheus exporter once a second, when `[metrics]
//! listen` is set. The metric names and their descriptions are [`crate::prometheus`]'s; this
//! is the wiring that reads the cameras' and the outbox's own state, so that the metrics
//! module knows neither.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use metrics::{counter, gauge};

use crate::ingest::slot::FrameBoard;
use crate::publish::OutboxGauge;
use crate::publish::durable::lane_name;
use crate::publish::outbox::LANES;

/// Copy the pipeline's counters and the outbox gauges into the exporter every second until
/// `stop`.
pub async fn mirror(
    board: Arc<FrameBoard>,
    cameras: Vec<String>,
    outbox: Arc<OutboxGauge>,
    stop: Arc<AtomicBool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        for (i, id) in cameras.iter().enumerate() {
            let k = board.counters(i);
            let set = |name: &'static str, v: u64| {
                counter!(name, "camera" => id.clone()).absolute(v);
            };
            for (name, c) in [
                ("vigil_frames_decoded_total", &k.decoded),
                ("vigil_frames_thinned_total", &k.thinned),
                ("vigil_frames_misordered_total", &k.misordered),
                ("vigil_frames_missing_total", &k.missing),
                ("vigil_rtp_packets_lost_total", &k.packets_lost),
                ("vigil_rtp_packets_late_total", &k.packets_late),
                ("vigil_frames_received_total", &k.received),
                ("vigil_frames_analysed_total", &k.analysed),
                ("vigil_frames_dropped_total", &k.dropped),
                ("vigil_decode_errors_total", &k.decode_errors),
                ("vigil_camera_reconnects_total", &k.reconnects),
            ] {
                set(name, c.load(Ordering::Relaxed));
            }
            let streaming = k
                .published
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_ref()
                .is_some_and(|p| p.state == "streaming");
            gauge!("vigil_camera_streaming", "camera" => id.clone())
                .set(f64::from(u8::from(streaming)));
        }
        let o = outbox.get();
        for (i, lane) in LANES.iter().enumerate() {
            gauge!("vigil_outbox_rows", "lane" => lane_name(*lane)).set(o.depth[i] as f64);
        }
        gauge!("vigil_outbox_bytes").set(o.bytes as f64);
        gauge!("vigil_outbox_durable").set(f64::from(u8::from(o.store_error.is_none())));
        gauge!("vigil_broker_connected").set(f64::from(u8::from(o.connected)));
    }
}
