// The uniform of the tiled and register-blocked GEMM kernels: kernels::gemm's
// Params (the subgroup kernel has its own).
struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    // LeakyReLU's slope, for the epilogue (the kernel's EPILOGUE constant).
    slope: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    _pad3: u32,
}
