//! The operating system's glue, in one place: systemd's notification protocol ([`notify`]:
//! readiness, status, watchdog pings) and the process's memory ([`memory`]: resident size,
//! peak, and handing freed heap back after the models load). A leaf: it imports nothing of the
//! crate. The box's clocks and time zone are [`crate::clock`]'s.

pub mod memory;
pub mod notify;
