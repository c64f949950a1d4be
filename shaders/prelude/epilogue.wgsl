// The activation the GEMM kernels apply after the bias add, coded as
// kernels::gemm::Epilogue::encode: 0 none, 1 ReLU, 2 LeakyReLU(slope); and
// the gradient epilogues 3 (ReLU) and 4 (LeakyReLU(slope)), which multiply
// by the derivative at the forward activation `a` the kernel reads from its
// bias binding at the element's own index.
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

// Codes 3 and 4: v·f'(a), with f' tested on the forward activation's sign
// as the elementwise backward kernel does (dy·(a > 0 ? 1 : slope)).
fn apply_grad_epilogue(v: f32, a: f32, code: u32, slope: f32) -> f32 {
    return select(select(v * slope, 0.0, code == 3u), v, a > 0.0);
}


fn apply_grad_epilogue4(v: vec4<f32>, a: vec4<f32>, code: u32, slope: f32) -> vec4<f32> {
    return select(select(v * slope, vec4<f32>(0.0), code == 3u), v, a > vec4<f32>(0.0));
}
