// Inverted dropout (Keras): y = x * mask / (1 - rate), where mask is kept
// when a counter-based hash of (seed, step, stream, element index) is >=
// rate as a
// u32 threshold. The mask is a pure function of those three, so backward
// regenerates it instead of storing it.

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

// PCG-RXS-M-XS 32-bit output permutation (Jarzynski & Olano, "Hash
// Functions for GPU Rendering", 2020): a bijection on u32 with good
// avalanche, cheap in integer ALU.
fn pcg(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

// Must match kernels::dropout::cpu::hash bit for bit. Stream 0 keeps the
// key of the single-stream hash, so masks drawn before streams existed
// reproduce; any other stream hashes itself into the key. The select is on
// a uniform: every invocation takes the same side.
fn hash(seed: u32, step: u32, stream: u32, i: u32) -> u32 {
    let key = pcg(seed ^ pcg(step));
    let k = select(pcg(key ^ pcg(stream)), key, stream == 0u);
    return pcg(k ^ pcg(i));
}

// Forward (src = x, dst = y) and backward (src = dy, dst = dx) are the same
// masked scaling.
@compute @workgroup_size(WG)
fn dropout_apply(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    let keep = hash(s.seed, s.step, p.stream, i) >= p.threshold;
    dst[i] = select(0.0, src[i] * p.scale, keep);
}
