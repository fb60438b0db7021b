//! Camera URL checking and redaction on any text: never a panic, and a password never survives
//! redaction. (Passwords are only judged when they hold a '§', a character no message of ours
//! contains, so that finding them in the output means they leaked.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil::config::url;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let _ = url::check(&raw);
    let _ = url::host_and_path(&raw);
    let (user, password) = match raw.split_once('\u{1}') {
        Some((u, p)) => (u, p),
        None => ("tech", raw.as_ref()),
    };
    if password.len() < 3 || !password.contains('§') || user.contains(['@', ':', '§']) {
        return;
    }
    let full = format!("rtsp://{user}:{password}@cam.example/stream");
    let shown = [
        url::redact(&full),
        url::scrub(&format!("cannot open {full}"), &full),
        url::check(&full).err().map(|e| e.to_string()).unwrap_or_default(),
    ];
    for s in shown {
        assert!(!s.contains(password), "password survived redaction: {s}");
    }
});
