//! vigil: an edge camera analytics agent.
//!
//! RTSP cameras → GStreamer decode → ONNX object detection → rules → incidents over MQTT.
//! Modules follow the data flow: [`config`] → [`ingest`] → [`detect`] → [`rules`] →
//! [`incident`] → [`publish`] (the transport), with camera [`health`] and [`telemetry`] beside
//! them, wired together by [`agent`]; [`cmd`] holds the command-line interface. Imports run one
//! way: docs/architecture.md has the map, and `tests/layers.rs` checks it.

pub mod agent;
pub mod backoff;
pub mod clip;
pub mod clock;
pub mod cmd;
pub mod command;
pub mod config;
pub mod detect;
pub mod diag;
pub mod evidence;
pub mod geometry;
pub mod hash;
pub mod health;
pub mod incident;
pub mod ingest;
pub mod os;
pub mod pixels;
pub mod prometheus;
pub mod publish;
pub mod reload;
pub mod rules;
pub mod spanned;
pub mod telemetry;
