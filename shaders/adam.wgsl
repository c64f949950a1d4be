// Adam, Keras form, over one flat buffer holding every parameter tensor
// (grads, m and v packed the same way), so one dispatch updates the model:
//   m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;  theta -= lr_t * m / (sqrt(v) + eps)
// with lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t) computed on the host in f64.
// Four elements per invocation through vec4 views: lavapipe pays per load
// instruction, and a vec4 load costs about one scalar load. Buffers are
// padded to 16 bytes, so the last vec4 is in bounds; its lanes at or past n
// keep their old values.
//
// m and v are flushed to zero once they fall below the smallest normal f32:
// a parameter whose gradient stays 0 (a dead ReLU's weights) sees its m
// decay by b1 a step into subnormals, and on CPU adapters every arithmetic
// instruction touching a subnormal takes a microcode assist (lavapipe ran
// the MLP's steps 7 → 17 ms once half its m were subnormal, after about
// 700 steps). A subnormal m or v moves theta by under 1e-30: nothing. (TF
// runs its CPU kernels with denormals flushed as well.)

struct Hyper {
    lr_t: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> h: Hyper;
@group(0) @binding(1) var<storage, read_write> params: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> grads: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> m: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> v: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn adam_update(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    let first = i * 4u;
    if (first >= h.n) {
        return;
    }
    let g = grads[i];
    let m_old = m[i];
    let v_old = v[i];
    let theta = params[i];
    let m_new = flush(h.beta1 * m_old + (1.0 - h.beta1) * g);
    let v_new = flush(h.beta2 * v_old + (1.0 - h.beta2) * (g * g));
    let t_new = theta - h.lr_t * m_new / (sqrt(v_new) + h.eps);
    let live = vec4<u32>(first, first + 1u, first + 2u, first + 3u) < vec4<u32>(h.n);
    m[i] = select(m_old, m_new, live);
    v[i] = select(v_old, v_new, live);
    params[i] = select(theta, t_new, live);
}

// Zero where |x| is below the smallest normal f32, 2^-126 (subnormals).
fn flush(x: vec4<f32>) -> vec4<f32> {
    return select(x, vec4<f32>(0.0), abs(x) < vec4<f32>(1.17549435e-38));
}
