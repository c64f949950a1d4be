// The batch gather of gather.wgsl, fast path for images whose planes hold
// a multiple of 4 pixels (CIFAR: 1,024) and at most 4 channels: one
// invocation takes 4 consecutive pixels, i.e. one u32 word of each channel
// plane, and writes their 4·C NHWC floats as C vec4s (the quad's output
// starts at float (b·HW + p)·C with p a multiple of 4, so it is
// vec4-aligned). On lavapipe, where each load or store instruction costs a
// loop over the lanes, that is 1 + 2·C memory instructions per 4·C outputs
// instead of 3 per output. C is an override constant so the channel loops
// unroll and the private word array stays in registers.

override WG: u32 = 64u;
override C: u32 = 3u;

@group(0) @binding(0) var<uniform> p: GatherParams; // shaders/prelude/gather_params.wgsl
@group(0) @binding(1) var<uniform> s: Step; // shaders/prelude/step.wgsl
@group(0) @binding(2) var<storage, read> indices: array<u32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<storage, read_write> x: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> labels_out: array<u32>;
@group(0) @binding(6) var<storage, read> chunk0: array<u32>;
@group(0) @binding(7) var<storage, read> chunk1: array<u32>;
@group(0) @binding(8) var<storage, read> chunk2: array<u32>;
@group(0) @binding(9) var<storage, read> chunk3: array<u32>;

fn load_word(chunk: u32, w: u32) -> u32 {
    switch chunk {
        case 0u: { return chunk0[w]; }
        case 1u: { return chunk1[w]; }
        case 2u: { return chunk2[w]; }
        default: { return chunk3[w]; }
    }
}

fn channel_value(words: array<u32, 4>, f: u32) -> f32 {
    // Flat position f in the quad's output: pixel f / C, channel f % C.
    let v = (words[f % C] >> (8u * (f / C))) & 0xffu;
    return f32(v) * p.scale;
}

@compute @workgroup_size(WG)
fn gather_quads(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = flat_index(gid, nwg, WG);
    let quads = p.hw / 4u;
    if (q >= p.batch * quads) {
        return;
    }
    let b = q / quads;
    let quad = q % quads;
    let image = indices[s.batch_base + b];
    let chunk = image / p.images_per_chunk;
    let base = (image % p.images_per_chunk) * p.image_words + quad;
    var words: array<u32, 4>;
    for (var c = 0u; c < C; c++) {
        words[c] = load_word(chunk, base + c * quads);
    }
    for (var k = 0u; k < C; k++) {
        let f = 4u * k;
        x[q * C + k] = vec4<f32>(channel_value(words, f), channel_value(words, f + 1u),
                                 channel_value(words, f + 2u), channel_value(words, f + 3u));
    }
    if (quad == 0u) {
        labels_out[b] = labels[image];
    }
}
