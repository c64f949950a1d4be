//! One module per kernel family: the WGSL wrapper (`*_dispatch` builders
//! returning a `Dispatch`) and, in `cpu`, the plain-Rust reference.

pub mod adam;
pub mod add;
pub mod batchnorm;
pub mod concat;
pub mod conv;
pub mod dropout;
pub mod elementwise;
pub mod gather;
pub mod gemm;
pub mod pool;
pub mod reduce;
pub mod softmax_xent;
pub mod step;
pub mod window;
