// Fused softmax + categorical cross-entropy over logits [batch, classes]
// (row-major) with integer labels. One invocation per row: the models have
// 10 classes and batches of 32..1000, so a row is a short serial loop and
// rows are the only parallelism worth having.
//
// Loss follows Keras' categorical_crossentropy on softmax outputs:
// loss = -log(clip(p[label], 1e-7, 1 - 1e-7)). The gradient is the plain
// (softmax - onehot) / batch of TF's from-logits path, which ignores the
// clip (the clip only bites when p[label] is within 1e-7 of 0 or 1, where
// the unclipped gradient is the useful one).

struct Params {
    batch: u32,
    classes: u32,
    // 1 / batch, computed on the host so GPU and CPU multiply by the same value.
    inv_batch: f32,
    _pad: u32,
}

override WG: u32 = 64u;

const EPS: f32 = 1e-7;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> correct: array<u32>;
// Only the training entry point uses this binding.
@group(0) @binding(5) var<storage, read_write> dlogits: array<f32>;

// Returns (max, sum of exp(x - max)) of one row and writes loss and
// correct; first max wins, like numpy/TF argmax.
fn row_loss(row: u32) -> vec2<f32> {
    let base = row * p.classes;
    var m = logits[base];
    var arg = 0u;
    for (var j = 1u; j < p.classes; j++) {
        let v = logits[base + j];
        if (v > m) {
            m = v;
            arg = j;
        }
    }
    var s = 0.0;
    for (var j = 0u; j < p.classes; j++) {
        s += exp(logits[base + j] - m);
    }
    let label = labels[row];
    let pl = exp(logits[base + label] - m) / s;
    loss[row] = -log(clamp(pl, EPS, 1.0 - EPS));
    correct[row] = select(0u, 1u, arg == label);
    return vec2<f32>(m, s);
}

@compute @workgroup_size(WG)
fn xent_forward(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = flat_index(gid, nwg, WG);
    if (row >= p.batch) {
        return;
    }
    _ = row_loss(row);
}

@compute @workgroup_size(WG)
fn xent_forward_backward(@builtin(global_invocation_id) gid: vec3<u32>,
                         @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = flat_index(gid, nwg, WG);
    if (row >= p.batch) {
        return;
    }
    let ms = row_loss(row);
    let base = row * p.classes;
    let label = labels[row];
    for (var j = 0u; j < p.classes; j++) {
        let prob = exp(logits[base + j] - ms.x) / ms.y;
        let onehot = select(0.0, 1.0, j == label);
        dlogits[base + j] = (prob - onehot) * p.inv_batch;
    }
}
