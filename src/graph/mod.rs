//! The graph executor: ops with shape inference (`op`, `model`), lowering to
//! a flat program of kernel instructions with the backward pass derived per
//! op (`program`), buffer planning (`plan`), and the backends that run a
//! program (`cpu`, `gpu`).

pub mod cpu;
pub mod error;
pub mod gpu;
pub mod model;
pub mod op;
pub mod params;
pub mod plan;
pub mod program;

pub use error::GraphError;
pub use model::{Graph, Node, NodeId};
pub use op::{Activation, Init, Op, Padding, ParamSpec};
