//! gdl-gpu: a GPU-first deep-learning engine. Every training operation is a
//! hand-written WGSL compute shader run through wgpu; each kernel has a plain
//! Rust reference beside it (`kernels::*::cpu`).
//!
//! The layers: [`graph`] holds models (a [`graph::Graph`] of Keras layers,
//! lowered to a [`graph::program::Program`] of kernel instructions),
//! [`models`] reads model files and the built-ins, [`kernels`] wraps each
//! shader, [`gpu`] owns the device, and [`train`] runs epochs on a GPU or
//! CPU backend. Images are NHWC f32, matrices row-major, and lengths in
//! elements unless a name says bytes.
//!
//! Training a built-in model (or a `.toml` / Keras `.json` model file) on
//! CIFAR-10 for one epoch:
//!
//! ```no_run
//! use gdl_gpu::data::Cifar10;
//! use gdl_gpu::graph::params::ParamLayout;
//! use gdl_gpu::kernels::adam::AdamConfig;
//! use gdl_gpu::train::gpu::GpuBackend;
//! use gdl_gpu::train::{fit, FitConfig, ModelValues};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let graph = gdl_gpu::models::load_graph("cnn")?; // or a path to a model file
//! let data = Cifar10::load_or_download(None)?;
//! let gpu = gdl_gpu::Gpu::new()?;
//! let seed = 0;
//! let init = ModelValues::initial(&ParamLayout::new(&graph), seed);
//! let mut backend = GpuBackend::new(
//!     &gpu,
//!     &graph,
//!     &data.train,
//!     &data.test,
//!     AdamConfig::default(),
//!     seed,
//!     &init,
//! )?;
//! let cfg = FitConfig {
//!     progress: true,
//!     ..FitConfig::new(1, 32, seed)
//! };
//! let reports = fit(&mut backend, data.train.len, &cfg, |_, _| Ok(()))?;
//! println!("test accuracy {:.3}", reports[0].test.accuracy());
//! # Ok(())
//! # }
//! ```
//!
//! A model can also be built in Rust, layer by layer, with
//! [`graph::Graph::add`]:
//!
//! ```
//! use gdl_gpu::graph::ops::{Conv2d, Dense, Flatten, Pool2d, PoolKind};
//! use gdl_gpu::graph::{Activation, Graph};
//! use gdl_gpu::kernels::window::Padding;
//!
//! # fn main() -> Result<(), gdl_gpu::graph::GraphError> {
//! let mut g = Graph::new("small_cnn", 32, 32, 3); // input [32, 32, 3]
//! let conv = Conv2d::new(16, 3, 1, Padding::Same).with_activation(Activation::Relu);
//! let x = g.add(None, conv, &[0])?; // reads node 0, the input
//! let x = g.add(None, Pool2d::new(PoolKind::Max, 2), &[x])?;
//! let x = g.add(None, Flatten, &[x])?;
//! g.add(None, Dense::new(10, Activation::Softmax), &[x])?;
//! g.validate(10)?;
//! assert_eq!(g.classes(), 10);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod bench;
pub mod data;
pub mod gpu;
pub mod graph;
pub mod kernels;
pub mod models;
pub mod par;
pub mod profile;
pub mod render;
pub mod shaders;
pub mod train;
pub mod tune;
pub mod util;

pub use gpu::{Gpu, GpuError};
