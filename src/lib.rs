//! gdl-gpu: a GPU-first deep-learning engine. Every training operation is a
//! hand-written WGSL compute shader run through wgpu; each kernel has a plain
//! Rust reference beside it (`kernels::*::cpu`).

pub mod bench;
pub mod data;
pub mod gpu;
pub mod graph;
pub mod kernels;
pub mod models;
pub mod profile;
pub mod render;
pub mod shaders;
pub mod train;
pub mod util;

pub use gpu::{Gpu, GpuError};
