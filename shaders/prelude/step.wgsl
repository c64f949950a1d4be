// The per-step uniform, kernels::step::StepUniform: the executor rewrites it
// before every training step.
struct Step {
    batch_base: u32,
    seed: u32,
    step: u32,
    _pad: u32,
}
