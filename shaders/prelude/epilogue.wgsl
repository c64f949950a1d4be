// The activation the GEMM kernels apply after the bias add, coded as
// kernels::gemm::Epilogue::encode: 0 none, 1 ReLU, 2 LeakyReLU(slope).
fn apply_epilogue(v: f32, code: u32, slope: f32) -> f32 {
    var x = v;
    if (code == 1u) {
        x = max(x, 0.0);
    } else if (code == 2u) {
        x = select(x * slope, x, x > 0.0);
    }
    return x;
}

fn apply_epilogue4(v: vec4<f32>, code: u32, slope: f32) -> vec4<f32> {
    var x = v;
    if (code == 1u) {
        x = max(x, vec4<f32>(0.0));
    } else if (code == 2u) {
        x = select(x * slope, x, x > vec4<f32>(0.0));
    }
    return x;
}
