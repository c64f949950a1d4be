//! The checkpoint reader on arbitrary bytes: the metadata, the model file it
//! carries, and the tensors for the model it names.
#![no_main]

use gdl_gpu::train::checkpoint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.safetensors");
    if let Ok(info) = checkpoint::peek_bytes(path, data) {
        if let Ok(graph) = info.graph(path) {
            let _ = checkpoint::from_bytes(path, data, &graph);
        }
    }
});
