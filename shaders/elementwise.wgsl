// Activations, forward and backward (shaders/prelude/activation.wgsl). The
// function is chosen by the override constant KIND (one pipeline per kind):
// the prelude's switch folds away when the pipeline is compiled.

struct Params {
    n: u32,
    // LeakyReLU's slope or ELU's alpha.
    a: f32,
    _pad0: u32,
    _pad1: u32,
}

override WG: u32 = 256u;
// ActKind::code: 0 LeakyReLU, 1 sigmoid, 2 tanh, 3 ELU, 4 GELU.
override KIND: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// Forward writes y at binding 2; backward reads dy there and writes dx at
// binding 3. WGSL allows two variables on one binding as long as no entry
// point uses both.
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn act_forward(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    y[i] = act_apply(KIND, p.a, x[i]);
}

// x is the forward input (for LeakyReLU the executor may pass the output,
// which has the same sign).
@compute @workgroup_size(WG)
fn act_backward(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    dx[i] = act_grad(KIND, p.a, x[i], dy[i]);
}
