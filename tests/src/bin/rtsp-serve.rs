//! A stand-alone RTSP server for fault-injection tests and benchmarks: `rtsp-serve CLIP PORT
//! MOUNT [MOUNT…]` serves the clip (looping) at `rtsp://127.0.0.1:PORT/MOUNT` for each mount (each
//! its own stream, like separate cameras) until killed. A separate process, so that a test can
//! kill it with SIGKILL (its sockets close, as when a camera loses power) and start it again on
//! the same port, and so that a benchmark can tell its CPU from the agent's. A mount written
//! `MOUNT=FILE` serves FILE instead of CLIP (a camera's main stream and sub-stream).

use std::sync::Arc;

use vigil_demo::rtsp::{Clip, RtspServer};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let mounts = args.get(3..).unwrap_or_default();
    let (Some(clip), Some(port), false) = (args.get(1), args.get(2), mounts.is_empty()) else {
        eprintln!("usage: rtsp-serve CLIP PORT MOUNT[=FILE] [MOUNT[=FILE]…]");
        return std::process::ExitCode::from(2);
    };
    let Ok(port) = port.parse::<u16>() else {
        eprintln!("rtsp-serve: {port} is not a port");
        return std::process::ExitCode::from(2);
    };
    let load = |path: &str| Clip::load(std::path::Path::new(path)).map(Arc::new);
    let served = load(clip).and_then(|c| {
        let mounts = mounts
            .iter()
            .map(|m| match m.split_once('=') {
                Some((mount, file)) => Ok((mount, load(file)?)),
                None => Ok((m.as_str(), Arc::clone(&c))),
            })
            .collect::<Result<Vec<(&str, Arc<Clip>)>, _>>()?;
        RtspServer::start_on(port, &mounts)
    });
    match served {
        Ok(_server) => loop {
            std::thread::park();
        },
        Err(e) => {
            eprintln!("rtsp-serve: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
