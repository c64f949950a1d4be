//! What the training loop needs of a backend. The GPU executor and the CPU
//! reference both implement it over the same lowered programs.

use crate::graph::GraphError;

/// Running sums over the examples seen since the last reset.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Metrics {
    /// Sum of the per-example cross-entropy losses (nats).
    pub loss_sum: f64,
    /// Examples whose arg-max class equals the label.
    pub correct: u64,
    /// Examples summed over.
    pub examples: u64,
}

impl Metrics {
    /// Mean loss per example; 0 when no example was seen.
    pub fn loss(&self) -> f64 {
        self.loss_sum / self.examples.max(1) as f64
    }

    /// Fraction of examples classified correctly, `0..=1`; 0 when none was seen.
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.examples.max(1) as f64
    }

    /// From the GPU's [loss_sum f32 bits, correct, examples, 0] words.
    pub fn from_words(w: &[u32]) -> Metrics {
        Metrics {
            loss_sum: f32::from_bits(w[0]) as f64,
            correct: w[1] as u64,
            examples: w[2] as u64,
        }
    }
}

/// Everything a checkpoint holds of the model's numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelValues {
    /// Packed as `ParamLayout` says (padding included).
    pub trainable: Vec<f32>,
    /// Non-trainable state (BatchNorm moving mean and variance), packed as
    /// `ParamLayout` says.
    pub state: Vec<f32>,
    /// Adam's first moments, one per element of `trainable`.
    pub adam_m: Vec<f32>,
    /// Adam's second moments, one per element of `trainable`.
    pub adam_v: Vec<f32>,
    /// Adam steps taken so far.
    pub step: u64,
}

impl ModelValues {
    /// A model before its first step: Keras's initial weights drawn from
    /// `seed`, Adam's moments at zero.
    pub fn initial(layout: &crate::graph::params::ParamLayout, seed: u64) -> Self {
        let (trainable, state) = layout.initial_values(seed);
        ModelValues {
            trainable,
            state,
            adam_m: vec![0.0; layout.trainable_len],
            adam_v: vec![0.0; layout.trainable_len],
            step: 0,
        }
    }
}

/// A model being trained on one device, with the training and test sets
/// already uploaded. Errors come from the device (or a bad argument).
pub trait Backend {
    /// `GPU: llvmpipe … [Vulkan]` or "CPU reference".
    fn describe(&self) -> String;
    /// The order in which the training set is read this epoch.
    fn set_permutation(&mut self, perm: &[u32]) -> Result<(), GraphError>;
    /// Queues one training step on examples perm[start .. start + len].
    fn train_step(&mut self, start: usize, len: usize) -> Result<(), GraphError>;
    /// Gets ready for steps of `batch` examples before any is timed (the
    /// GPU backend builds the step's program, tuning its kernels first
    /// where it tunes); nothing by default.
    fn prepare(&mut self, batch: usize) -> Result<(), GraphError> {
        let _ = batch;
        Ok(())
    }
    /// The running training metrics (waits for queued steps).
    fn metrics(&mut self) -> Result<Metrics, GraphError>;
    /// Zeroes the running training metrics.
    fn reset_metrics(&mut self) -> Result<(), GraphError>;
    /// Loss and accuracy on the whole test set, inference mode.
    fn evaluate(&mut self) -> Result<Metrics, GraphError>;
    /// Class probabilities of every test-set example, in order, inference
    /// mode (softmax of the logits).
    fn predict(&mut self) -> Result<Vec<Vec<f32>>, GraphError>;
    /// Copies the weights, state and Adam moments back from the device
    /// (waits for queued steps).
    fn values(&mut self) -> Result<ModelValues, GraphError>;
    /// Overwrites the weights, state, Adam moments and step with `v`, whose
    /// lengths must match the model's layout.
    fn set_values(&mut self, v: &ModelValues) -> Result<(), GraphError>;
}
