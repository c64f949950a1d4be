//! Shared by the kernel tests: one device per test process.

#![allow(dead_code)]

use std::sync::OnceLock;

use gdl_gpu::Gpu;

pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let gpu = Gpu::new().unwrap_or_else(|e| panic!("kernel tests need an adapter: {e}"));
        eprintln!("kernel tests on {} ({:?})", gpu.name(), gpu.caps);
        gpu
    })
}

pub fn upload(data: &[f32]) -> wgpu::Buffer {
    gpu().upload_storage("test input", data).expect("upload")
}

pub fn zeros(n: usize) -> wgpu::Buffer {
    gpu().storage("test output", (n * 4) as u64).expect("alloc")
}

pub fn read(buf: &wgpu::Buffer, n: usize) -> Vec<f32> {
    gpu().read_f32(buf, n).expect("readback")
}

/// Asserts `got ≈ want` within `atol + rtol·|want|`, naming the case.
#[track_caller]
pub fn assert_close(case: &str, got: &[f32], want: &[f32], atol: f64, rtol: f64) {
    if let Err(msg) = gdl_gpu::util::compare(got, want, atol, rtol) {
        panic!("{case}: {msg}");
    }
}
