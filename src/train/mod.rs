//! Training: the backend abstraction, the two backends, and the loop.

pub mod backend;
pub mod checkpoint;
pub mod cpu;
pub mod fit;
pub mod gpu;
pub mod plot;

pub use backend::{Backend, Metrics, ModelValues};
pub use checkpoint::{Checkpoint, CheckpointError, CheckpointInfo};
pub use fit::{fit, EpochReport, FitConfig, FitError};
pub use plot::{write_training_plot, PlotError};
