//! The graph executor: layers with their shapes, parameters and gradient
//! rules (`ops`, one file per layer), the model graph (`model`), lowering
//! to a flat program of kernel instructions (`lower`, `program`), buffer
//! planning (`plan`), kernel fusion (`fuse`), and the backends that run a
//! program (`cpu`, `gpu`).

pub mod args;
pub mod cpu;
pub mod error;
pub mod fuse;
pub mod gpu;
pub mod lower;
pub mod model;
pub mod ops;
pub mod origin;
pub mod params;
mod peephole;
pub mod plan;
pub mod program;

pub use error::GraphError;
pub use model::{Graph, Node, NodeId};
pub use ops::{Activation, Init, Layer, Op, ParamSpec};
