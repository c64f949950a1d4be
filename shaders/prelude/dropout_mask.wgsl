// Inverted dropout's mask (Keras): element i is kept when a counter-based
// hash of (seed, step, stream, i) is >= the rate as a u32 threshold. The
// seed is the run's u64 as (low, high) words. The
// mask is a pure function of those, so backward regenerates it instead of
// storing it, and every kernel that applies a Dropout layer draws the same
// one.

// PCG-RXS-M-XS 32-bit output permutation (Jarzynski & Olano, "Hash
// Functions for GPU Rendering", 2020): a bijection on u32 with good
// avalanche, cheap in integer ALU.
fn pcg(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

// Must match kernels::dropout::cpu::hash bit for bit. A seed's high word
// and a stream other than 0 hash themselves into the key; a zero high word
// and stream 0 leave it as the single-stream, 32-bit-seed hash had it, so
// masks drawn before either existed reproduce. The selects are on
// uniforms: every invocation takes the same side.
fn dropout_hash(seed: vec2<u32>, step: u32, stream: u32, i: u32) -> u32 {
    let low = pcg(seed.x ^ pcg(step));
    let key = select(pcg(low ^ pcg(seed.y)), low, seed.y == 0u);
    let k = select(pcg(key ^ pcg(stream)), key, stream == 0u);
    return pcg(k ^ pcg(i));
}

// v·mask/(1 − rate) for element i: `threshold` is round(rate·2³²) and
// `scale` 1/(1 − rate), both from the host.
fn dropout_apply_one(v: f32, seed: vec2<u32>, step: u32, stream: u32, i: u32, threshold: u32,
                     scale: f32) -> f32 {
    let keep = dropout_hash(seed, step, stream, i) >= threshold;
    return select(0.0, v * scale, keep);
}
