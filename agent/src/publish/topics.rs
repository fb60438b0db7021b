//! The topics of the `vigil/v1` contract (docs/mqtt.md): every one is under the box's root,
//! `vigil/v1/{district}/{device}`, built from its [`Identity`]. Addressing only: what goes on
//! a topic is its owner's (incidents in `incident`, health and camera status in `telemetry`,
//! the device status in [`super::presence`]).

/// Who is speaking: the parts of every topic and payload that identify the box.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// Device id.
    pub device: String,
    /// District id.
    pub district: String,
}

impl Identity {
    /// `vigil/v1/{district}/{device}`.
    pub fn root(&self) -> String {
        format!("vigil/v1/{}/{}", self.district, self.device)
    }

    /// Retained device status topic.
    pub fn status_topic(&self) -> String {
        format!("{}/status", self.root())
    }

    /// Incident topic of a camera.
    pub fn incident_topic(&self, camera: &str) -> String {
        format!("{}/incidents/{camera}", self.root())
    }

    /// Snapshot topic of an incident.
    pub fn snapshot_topic(&self, camera: &str, id: &uuid::Uuid) -> String {
        format!("{}/incidents/{camera}/{id}/snapshot", self.root())
    }

    /// Where the picture a `snapshot` command (request `id`) asked of a camera goes.
    pub fn camera_snapshot_topic(&self, camera: &str, id: &str) -> String {
        format!("{}/cameras/{camera}/snapshot/{id}", self.root())
    }

    /// Where the chunks of a clip go (`{topic}/{n}`): an incident's, or the clip a `clip`
    /// command (request `request`) asked of a camera.
    pub fn clip_topic(&self, camera: &str, incident: Option<&uuid::Uuid>, request: &str) -> String {
        match incident {
            Some(id) => format!("{}/incidents/{camera}/{id}/clip", self.root()),
            None => format!("{}/cameras/{camera}/clip/{request}", self.root()),
        }
    }

    /// Retained status topic of a camera.
    pub fn camera_status_topic(&self, camera: &str) -> String {
        format!("{}/cameras/{camera}/status", self.root())
    }

    /// Health telemetry topic.
    pub fn health_topic(&self) -> String {
        format!("{}/health", self.root())
    }

    /// The device's own test topic (`vigil mqtt-test` publishes and reads it back).
    pub fn test_topic(&self) -> String {
        format!("{}/test", self.root())
    }

    /// The filter of the commands addressed to this box: `…/cmd/+` (one level: the results
    /// on `…/cmd/{command}/result` are not matched).
    pub fn command_filter(&self) -> String {
        format!("{}/cmd/+", self.root())
    }

    /// Where the result of `command` goes.
    pub fn command_result_topic(&self, command: &str) -> String {
        format!("{}/cmd/{command}/result", self.root())
    }
}
