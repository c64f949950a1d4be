// Softmax probabilities of logits [batch, classes] (for predict): one
// invocation per row, max-subtracted for stability. A separate module from
// softmax_xent because its output takes binding 2, where the loss kernels
// bind the labels.

struct Params {
    batch: u32,
    classes: u32,
    _pad0: u32,
    _pad1: u32,
}

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> probs: array<f32>;

@compute @workgroup_size(WG)
fn softmax(@builtin(global_invocation_id) gid: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = flat_index(gid, nwg, WG);
    if (row >= p.batch) {
        return;
    }
    let base = row * p.classes;
    var m = logits[base];
    for (var j = 1u; j < p.classes; j++) {
        m = max(m, logits[base + j]);
    }
    var s = 0.0;
    for (var j = 0u; j < p.classes; j++) {
        s += exp(logits[base + j] - m);
    }
    for (var j = 0u; j < p.classes; j++) {
        probs[base + j] = exp(logits[base + j] - m) / s;
    }
}
