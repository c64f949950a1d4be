//! Model files (TOML) on arbitrary text: build a graph or fail with a
//! `ModelError`, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = gdl_gpu::models::toml_file::parse(text, "fuzz.toml").and_then(|s| s.build());
});
