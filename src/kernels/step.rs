//! The per-step uniform shared by the kernels that depend on the step
//! (dropout's RNG, the batch gather's offset into the permutation).

/// Written once per training step by the executor (queue.write_buffer) before submit.
/// WGSL kernels bind it as `var<uniform>` with the same four-u32 struct.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct StepUniform {
    /// Offset into the epoch's permutation of the first example of this batch.
    pub batch_base: u32,
    /// The run's seed (fixed for a run), low word.
    pub seed: u32,
    /// The step counter (advances every step, so dropout masks differ).
    pub step: u32,
    /// The seed's high word: the whole u64 reaches the dropout hash.
    pub seed_hi: u32,
}

impl StepUniform {
    /// The uniform for one step.
    pub fn new(batch_base: u32, seed: u64, step: u32) -> Self {
        StepUniform {
            batch_base,
            seed: seed as u32,
            step,
            seed_hi: (seed >> 32) as u32,
        }
    }
}
