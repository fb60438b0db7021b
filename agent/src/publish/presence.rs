//! The device's own status, the one payload the transport writes itself: the retained
//! `online` birth message at each connect, the `offline` last will the broker publishes when the
//! connection drops without a goodbye, and `stopped` at a clean shutdown (`vigil.status/1`).

use std::time::SystemTime;

use serde::Serialize;
use serde_json::json;

use super::Identity;
use crate::clock::rfc3339_ms;

/// Status payload schema id.
pub const STATUS_SCHEMA: &str = "vigil.status/1";

/// Device status states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceState {
    /// Connected and running (birth message).
    Online,
    /// Connection lost without a goodbye (last will, published by the broker).
    Offline,
    /// Clean shutdown.
    Stopped,
}

/// A model as the status and health messages name it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ModelLine {
    /// Its card's name.
    pub name: String,
    /// Its card's version.
    pub version: String,
    /// The engine running it: `tract`, `ort` or `builtin` (`backend = "auto"` says here which
    /// one it chose).
    pub engine: &'static str,
}

/// What the birth message lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    /// Agent version.
    pub version: String,
    /// Process start time.
    pub started_at: Option<SystemTime>,
    /// Camera ids.
    pub cameras: Vec<String>,
    /// Each model, with its engine.
    pub models: Vec<ModelLine>,
    /// The box's time zone (IANA name).
    pub timezone: String,
}

/// The retained status payload.
pub fn status(identity: &Identity, state: DeviceState, inv: &Inventory) -> serde_json::Value {
    let name = match state {
        DeviceState::Online => "online",
        DeviceState::Offline => "offline",
        DeviceState::Stopped => "stopped",
    };
    let mut v = json!({
        "schema": STATUS_SCHEMA,
        "state": name,
        "device": identity.device,
        "district": identity.district,
        "version": inv.version,
    });
    if state != DeviceState::Offline
        && let Some(obj) = v.as_object_mut()
    {
        obj.insert("time".into(), json!(rfc3339_ms(SystemTime::now())));
        if let Some(t) = inv.started_at {
            obj.insert("started_at".into(), json!(rfc3339_ms(t)));
        }
        obj.insert("cameras".into(), json!(inv.cameras));
        obj.insert("timezone".into(), json!(inv.timezone));
        obj.insert("models".into(), json!(inv.models));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_payloads() {
        let id = Identity {
            device: "d".into(),
            district: "q".into(),
        };
        let inv = Inventory {
            version: "0.1.0".into(),
            cameras: vec!["a".into()],
            ..Inventory::default()
        };
        let on = status(&id, DeviceState::Online, &inv);
        assert_eq!(on["state"], "online");
        assert_eq!(on["cameras"][0], "a");
        let off = status(&id, DeviceState::Offline, &inv);
        assert_eq!(off["state"], "offline");
        assert!(
            off.get("cameras").is_none(),
            "the last will is fixed at connect and says only who"
        );
    }
}
