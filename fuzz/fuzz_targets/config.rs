//! The configuration parser and validator on any bytes: a result, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data).into_owned();
    let _ = vigil::config::parse(std::path::Path::new("vigil.toml"), src);
});
