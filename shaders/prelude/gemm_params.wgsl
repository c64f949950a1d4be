// The uniform of the tiled and register-blocked GEMM kernels: kernels::gemm's
// Params (the subgroup kernel has its own).
struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    // bit 0: add bias[n]; bit 1: accumulate into C (then no bias/epilogue).
    flags: u32,
    // 0: none, 1: ReLU, 2: LeakyReLU(slope); 3, 4: their gradients (see
    // shaders/prelude/epilogue.wgsl).
    epilogue: u32,
    slope: f32,
    _pad0: u32,
    _pad1: u32,
}
