//! A stand-alone RTSP server for fault-injection tests: `rtsp-serve CLIP PORT MOUNT` serves the
//! clip (looping) at `rtsp://127.0.0.1:PORT/MOUNT` until killed. A separate process, so that a
//! test can kill it with SIGKILL (its sockets close, as when a camera loses power) and start it
//! again on the same port.

use std::sync::Arc;

use vigil::demo::rtsp::{Clip, RtspServer};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(clip), Some(port), Some(mount)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: rtsp-serve CLIP PORT MOUNT");
        return std::process::ExitCode::from(2);
    };
    let Ok(port) = port.parse::<u16>() else {
        eprintln!("rtsp-serve: {port} is not a port");
        return std::process::ExitCode::from(2);
    };
    let served = Clip::load(std::path::Path::new(clip))
        .map(Arc::new)
        .and_then(|c| RtspServer::start_on(port, &[(mount.as_str(), c)]));
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
