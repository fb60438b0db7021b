//! The model card parser and the labels parser on any bytes: a result, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    let _ = vigil::spanned::from_str::<vigil::detect::Card>(&src);
    let _ = vigil::detect::Labels::parse(&src);
});
