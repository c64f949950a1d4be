// Batch gather from a GPU-resident u8 image dataset: x[b, y, x, c] (NHWC
// f32) = pixel * (1/255) of image indices[batch_base + b], whose bytes are
// stored CHW planar, four to a u32 word (little-endian), each image starting
// on a word boundary. One storage binding is capped (128 MiB on lavapipe),
// so the images are split over up to four chunk buffers of whole images;
// unused chunk slots are bound to chunk 0. That makes 8 storage bindings in
// all, within the GL backend's 16 per stage.

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: GatherParams; // shaders/prelude/gather_params.wgsl
@group(0) @binding(1) var<uniform> s: Step; // shaders/prelude/step.wgsl
@group(0) @binding(2) var<storage, read> indices: array<u32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;
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

// One invocation per output element.
@compute @workgroup_size(WG)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = flat_index(gid, nwg, WG);
    if (o >= p.batch * p.image_bytes) {
        return;
    }
    let b = o / p.image_bytes;
    let r = o % p.image_bytes;
    let pixel = r / p.channels;
    let c = r % p.channels;
    let image = indices[s.batch_base + b];
    let chunk = image / p.images_per_chunk;
    let local = image % p.images_per_chunk;
    // NHWC output position r = pixel * C + c reads CHW byte c * HW + pixel.
    let byte = c * p.hw + pixel;
    let word = load_word(chunk, local * p.image_words + byte / 4u);
    let v = (word >> (8u * (byte % 4u))) & 0xffu;
    x[o] = f32(v) * p.scale;
    if (r == 0u) {
        labels_out[b] = labels[image];
    }
}
