// The per-step uniform, kernels::step::StepUniform: the executor rewrites it
// before every training step.
struct Step {
    batch_base: u32,
    // The run's u64 seed, low word.
    seed: u32,
    step: u32,
    // Its high word.
    seed_hi: u32,
}
