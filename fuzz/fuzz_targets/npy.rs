//! The golden files' `.npy` reader on any bytes: an array or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/src/npy.rs"]
#[allow(dead_code)]
mod npy;

fuzz_target!(|data: &[u8]| {
    let _ = npy::parse(data);
});
