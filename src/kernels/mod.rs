//! One module per kernel family: the WGSL wrapper (`*_dispatch` builders
//! returning a `Dispatch`) and, in `cpu`, the plain-Rust reference.

pub mod elementwise;
pub mod gemm;
