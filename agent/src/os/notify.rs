//! systemd's notification protocol (`sd_notify`), without libsystemd: datagrams of
//! `KEY=VALUE` lines to the socket named by `NOTIFY_SOCKET` (a path, or `@name` in the abstract
//! namespace). Used for `READY=1` once the configuration, models and outbox are loaded,
//! `WATCHDOG=1` while the agent makes progress, `STATUS=…` lines, and `STOPPING=1`. Outside
//! systemd (no `NOTIFY_SOCKET`) every call does nothing.

use std::ffi::OsStr;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// A connection to systemd's notification socket, or nothing.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// From the environment (`NOTIFY_SOCKET`).
    pub fn from_env() -> Notifier {
        Notifier::to(std::env::var_os("NOTIFY_SOCKET").as_deref())
    }

    /// To `socket` (as `NOTIFY_SOCKET` would name it), or nowhere.
    pub fn to(socket: Option<&OsStr>) -> Notifier {
        let target = socket.and_then(|s| {
            let addr = address(s)?;
            let sock = UnixDatagram::unbound().ok()?;
            Some((sock, addr))
        });
        Notifier { target }
    }

    /// Whether systemd listens.
    pub fn active(&self) -> bool {
        self.target.is_some()
    }

    /// Send `state` (one or more `KEY=VALUE` lines). Failures are ignored: systemd may be gone.
    pub fn send(&self, state: &str) {
        if let Some((sock, addr)) = &self.target {
            let _ = sock.send_to_addr(state.as_bytes(), addr);
        }
    }

    /// `STATUS=` with `text` (one line).
    pub fn status(&self, text: &str) {
        self.send(&format!("STATUS={}", text.replace('\n', " ")));
    }
}

fn address(s: &OsStr) -> Option<SocketAddr> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = s.as_bytes();
    match bytes.first()? {
        b'@' => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(&bytes[1..]).ok()
        }
        b'/' => SocketAddr::from_pathname(std::path::Path::new(s)).ok(),
        _ => None,
    }
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC` when it is set for this process
/// (`WATCHDOG_PID` absent or ours).
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_a_path_socket_and_nothing_happens_without_one() {
        let dir = std::env::temp_dir().join(format!("vigil-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("notify");
        let systemd = UnixDatagram::bind(&path).expect("bind");
        let n = Notifier::to(Some(path.as_os_str()));
        assert!(n.active());
        n.send("READY=1");
        n.status("running\n2 cameras");
        let mut buf = [0u8; 256];
        let len = systemd.recv(&mut buf).expect("ready");
        assert_eq!(&buf[..len], b"READY=1");
        let len = systemd.recv(&mut buf).expect("status");
        assert_eq!(&buf[..len], b"STATUS=running 2 cameras");
        let off = Notifier::to(None);
        assert!(!off.active());
        off.send("READY=1");
        assert!(!Notifier::to(Some(OsStr::new("relative/path"))).active());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn abstract_names_are_understood() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("vigil-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("addr");
        let systemd = UnixDatagram::bind_addr(&addr).expect("bind abstract");
        Notifier::to(Some(OsStr::new(&format!("@{name}")))).send("WATCHDOG=1");
        let mut buf = [0u8; 64];
        let len = systemd.recv(&mut buf).expect("ping");
        assert_eq!(&buf[..len], b"WATCHDOG=1");
    }
}
