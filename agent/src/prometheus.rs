//! The opt-in Prometheus endpoint (`[metrics] listen`, loopback only), with the `metrics` and
//! `metrics-exporter-prometheus` crates. Without it no recorder is installed and every call
//! here is a no-op.
//!
//! Counters the pipeline already keeps (frames, decode errors, reconnects) are copied into the
//! exporter once a second by the agent (`agent/metrics.rs`) rather than instrumented at each
//! site; incidents, outbox traffic and timings are recorded where they happen, through the
//! functions here, which know nothing of the stages. Labels stay low-cardinality: camera id, incident
//! type, outbox lane. The catalogue is in `docs/metrics.md`.

use std::net::SocketAddr;
use std::time::Duration;

use metrics::{Histogram, counter, histogram};
use metrics_exporter_prometheus::PrometheusBuilder;

/// Inference buckets, seconds (5 ms … 2 s).
const INFERENCE_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0,
];
/// Latency buckets, seconds (10 ms … 60 s: delivery waits out broker outages).
const LATENCY_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Why the endpoint cannot start.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics on {addr} (metrics.listen): {detail}")]
pub struct MetricsError {
    /// The address asked for.
    pub addr: String,
    /// What went wrong.
    pub detail: String,
}

/// Install the recorder and serve `/metrics` on `listen` (must be called inside the tokio
/// runtime, before any handle below is made).
pub fn install(listen: &str) -> Result<(), MetricsError> {
    let fail = |detail: String| MetricsError {
        addr: listen.to_string(),
        detail,
    };
    let addr: SocketAddr = listen.parse().map_err(|e| fail(format!("{e}")))?;
    // Bind first, so a taken port is an error at start rather than a log line later.
    std::net::TcpListener::bind(addr).map_err(|e| fail(e.to_string()))?;
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Suffix("inference_seconds".into()),
            INFERENCE_BUCKETS,
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Suffix("latency_seconds".into()),
                LATENCY_BUCKETS,
            )
        })
        .and_then(|b| {
            b.set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Suffix("delivery_seconds".into()),
                LATENCY_BUCKETS,
            )
        })
        .map_err(|e| fail(e.to_string()))?
        .install()
        .map_err(|e| fail(e.to_string()))?;
    describe();
    Ok(())
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "vigil_frames_decoded_total",
        "Frames out of a camera's decoder (before thinning to the analysis rate)"
    );
    describe_counter!(
        "vigil_frames_thinned_total",
        "Decoded frames not needed at the analysis rate"
    );
    describe_counter!(
        "vigil_frames_misordered_total",
        "Decoded frames dropped for a time not after the previous frame's"
    );
    describe_counter!(
        "vigil_frames_missing_total",
        "Frames missing before the decoder's output, by gaps in the stream's timestamps"
    );
    describe_counter!(
        "vigil_rtp_packets_lost_total",
        "RTP packets that never arrived (jitter buffer)"
    );
    describe_counter!(
        "vigil_rtp_packets_late_total",
        "RTP packets that arrived too late to be used (jitter buffer)"
    );
    describe_counter!(
        "vigil_frames_received_total",
        "Frames delivered by a camera's pipeline (after thinning to the analysis rate)"
    );
    describe_counter!(
        "vigil_frames_analysed_total",
        "Frames the detector analysed"
    );
    describe_counter!(
        "vigil_frames_dropped_total",
        "Frames replaced before analysis (the detector was busy)"
    );
    describe_counter!(
        "vigil_decode_errors_total",
        "Damaged input units the decoder concealed or reported"
    );
    describe_counter!(
        "vigil_camera_reconnects_total",
        "Pipeline rebuilds after an error, end of stream or stall"
    );
    describe_counter!(
        "vigil_incidents_total",
        "Incidents opened, by camera and type"
    );
    describe_counter!(
        "vigil_outbox_enqueued_total",
        "Messages stored in the outbox, by lane"
    );
    describe_counter!(
        "vigil_outbox_acked_total",
        "Messages the broker acknowledged, by lane"
    );
    describe_counter!(
        "vigil_outbox_evicted_total",
        "Messages evicted undelivered (data loss), by lane"
    );
    describe_counter!(
        "vigil_outbox_dead_letters_total",
        "Messages set aside undelivered (too large, or refused by the broker), by lane"
    );
    describe_histogram!(
        "vigil_inference_seconds",
        Unit::Seconds,
        "Detector time per analysed frame"
    );
    describe_histogram!(
        "vigil_engine_inference_seconds",
        Unit::Seconds,
        "The inference engine's run alone per analysed frame (no pre- or post-processing)"
    );
    describe_histogram!(
        "vigil_incident_latency_seconds",
        Unit::Seconds,
        "From a frame's capture (or arrival) to its incident event handed to the outbox"
    );
    describe_histogram!(
        "vigil_delivery_seconds",
        Unit::Seconds,
        "From a message stored in the outbox to the broker's acknowledgement, by lane"
    );
    describe_gauge!(
        "vigil_outbox_rows",
        "Messages waiting in the outbox, by lane"
    );
    describe_gauge!(
        "vigil_outbox_bytes",
        Unit::Bytes,
        "Bytes stored in the outbox"
    );
    describe_gauge!(
        "vigil_outbox_durable",
        "1 while messages are stored in the outbox file before they are sent, 0 while the file cannot be used (kept in memory only)"
    );
    describe_gauge!("vigil_broker_connected", "1 while connected to the broker");
    describe_gauge!(
        "vigil_camera_streaming",
        "1 while the camera delivers frames"
    );
}

/// Per-camera histogram handles, made once (no allocation per frame).
#[derive(Debug, Clone)]
pub struct CameraTimers {
    /// `vigil_inference_seconds{camera}`.
    pub inference: Histogram,
    /// `vigil_engine_inference_seconds{camera}`.
    pub engine: Histogram,
    /// `vigil_incident_latency_seconds{camera}`.
    pub latency: Histogram,
}

impl CameraTimers {
    /// Handles for `camera`.
    pub fn new(camera: &str) -> Self {
        CameraTimers {
            inference: histogram!("vigil_inference_seconds", "camera" => camera.to_string()),
            engine: histogram!("vigil_engine_inference_seconds", "camera" => camera.to_string()),
            latency: histogram!("vigil_incident_latency_seconds", "camera" => camera.to_string()),
        }
    }
}

/// An incident of `kind` opened on `camera`.
pub fn incident_opened(camera: &str, kind: &'static str) {
    counter!("vigil_incidents_total", "camera" => camera.to_string(), "type" => kind).increment(1);
}

/// A message of `lane` (its name) stored in the outbox.
pub fn outbox_enqueued(lane: &'static str) {
    counter!("vigil_outbox_enqueued_total", "lane" => lane).increment(1);
}

/// A message of `lane` acknowledged after `waited` in the outbox.
pub fn outbox_acked(lane: &'static str, waited: Duration) {
    counter!("vigil_outbox_acked_total", "lane" => lane).increment(1);
    histogram!("vigil_delivery_seconds", "lane" => lane).record(waited.as_secs_f64());
}

/// A message of `lane` evicted.
pub fn outbox_evicted(lane: &'static str) {
    counter!("vigil_outbox_evicted_total", "lane" => lane).increment(1);
}

/// A message of `lane` set aside as a dead letter.
pub fn outbox_dead_letter(lane: &'static str) {
    counter!("vigil_outbox_dead_letters_total", "lane" => lane).increment(1);
}
