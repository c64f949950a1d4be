//! What the training loop needs of a backend. The GPU executor and the CPU
//! reference both implement it over the same lowered programs.

use crate::graph::GraphError;

/// Running sums over the examples seen since the last reset.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Metrics {
    pub loss_sum: f64,
    pub correct: u64,
    pub examples: u64,
}

impl Metrics {
    pub fn loss(&self) -> f64 {
        self.loss_sum / self.examples.max(1) as f64
    }

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
    pub state: Vec<f32>,
    pub adam_m: Vec<f32>,
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

pub trait Backend {
    /// `GPU: llvmpipe … [Vulkan]` or "CPU reference".
    fn describe(&self) -> String;
    /// The order in which the training set is read this epoch.
    fn set_permutation(&mut self, perm: &[u32]) -> Result<(), GraphError>;
    /// Queues one training step on examples perm[start .. start + len].
    fn train_step(&mut self, start: usize, len: usize) -> Result<(), GraphError>;
    /// The running training metrics (waits for queued steps).
    fn metrics(&mut self) -> Result<Metrics, GraphError>;
    fn reset_metrics(&mut self) -> Result<(), GraphError>;
    /// Loss and accuracy on the whole test set, inference mode.
    fn evaluate(&mut self) -> Result<Metrics, GraphError>;
    /// Class probabilities of every test-set example, in order, inference
    /// mode (softmax of the logits).
    fn predict(&mut self) -> Result<Vec<Vec<f32>>, GraphError>;
    fn values(&mut self) -> Result<ModelValues, GraphError>;
    fn set_values(&mut self, v: &ModelValues) -> Result<(), GraphError>;
}
