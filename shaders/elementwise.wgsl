// Activations. ReLU is LeakyReLU with slope 0, so one pair of kernels
// serves both; the gradient follows TensorFlow: x > 0 passes dy, else slope·dy.

struct Params {
    n: u32,
    slope: f32,
    _pad0: u32,
    _pad1: u32,
}

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn leaky_relu_forward(@builtin(global_invocation_id) gid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.n) {
        return;
    }
    let v = x[i];
    y[i] = select(v * p.slope, v, v > 0.0);
}

// Backward reuses the layout: binding 1 is the forward input x, binding 2
// holds dy on entry and dx on exit (in place, the executor frees dy anyway).
@compute @workgroup_size(WG)
fn leaky_relu_backward(@builtin(global_invocation_id) gid: vec3<u32>,
                       @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.n) {
        return;
    }
    let g = y[i];
    y[i] = select(g * p.slope, g, x[i] > 0.0);
}
