//! Every kernel against its CPU reference, on the adapter gdl-gpu picks
//! (lavapipe in CI; `WGPU_BACKEND=gl` runs the same suite on llvmpipe's GL).
//! One test binary, one module per kernel family, so wgpu links once.

#[path = "kernels/adam.rs"]
mod adam;
#[path = "kernels/add.rs"]
mod add;
#[path = "kernels/batchnorm.rs"]
mod batchnorm;
#[path = "kernels/common.rs"]
mod common;
#[path = "kernels/concat.rs"]
mod concat;
#[path = "kernels/conv.rs"]
mod conv;
#[path = "kernels/dropout.rs"]
mod dropout;
#[path = "kernels/elementwise.rs"]
mod elementwise;
#[path = "kernels/gather.rs"]
mod gather;
#[path = "kernels/gemm.rs"]
mod gemm;
#[path = "kernels/pool.rs"]
mod pool;
#[path = "kernels/reduce.rs"]
mod reduce;
#[path = "kernels/softmax_xent.rs"]
mod softmax_xent;
