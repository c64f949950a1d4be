// Inverted dropout (Keras): y = x * mask / (1 - rate), with the mask of
// shaders/prelude/dropout_mask.wgsl.

struct Params {
    n: u32,
    // round(rate * 2^32): keep when hash >= threshold.
    threshold: u32,
    // 1 / (1 - rate) in f32, computed on the host (the CPU uses the same value).
    scale: f32,
    // Which Dropout layer: each draws its own mask.
    stream: u32,
}

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> s: Step; // shaders/prelude/step.wgsl
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

// Forward (src = x, dst = y) and backward (src = dy, dst = dx) are the same
// masked scaling.
@compute @workgroup_size(WG)
fn dropout_apply(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    dst[i] = dropout_apply_one(src[i], vec2<u32>(s.seed, s.seed_hi), s.step, p.stream, i, p.threshold, p.scale);
}
