//! A line a diagnostics client sends: a request or an error to answer with, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vigil::diag::protocol::parse(data);
});
