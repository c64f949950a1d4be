//! The CIFAR-10 archive reader on arbitrary bytes: loads or fails with a
//! `DataError`, never panics or allocates without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let name = std::path::Path::new("fuzz.tar.gz");
    if let Ok(c) = gdl_gpu::data::Cifar10::from_archive(name, data) {
        assert_eq!(c.test.labels.len(), c.test.len);
    }
});
