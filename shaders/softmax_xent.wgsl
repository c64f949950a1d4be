// Fused softmax + categorical cross-entropy over logits [batch, classes]
// (row-major) with integer labels, and the running metrics in the same
// dispatch: one workgroup, each invocation takes a fixed strided subset of
// rows (the models have 10 classes and batches of 32..1000, so a row is a
// short serial loop), sums their losses and correct flags, then a tree
// reduction in workgroup memory adds the batch into the metrics buffer
// [loss_sum: f32 (as bits), correct: u32, examples: u32, pad]. The
// summation order is fixed, so results are deterministic (no float
// atomics anywhere), and the per-example losses are never stored.
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

// A power of two (the tree halves it); kernels::softmax_xent::WG.
const WG: u32 = 64u;

const EPS: f32 = 1e-7;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> metrics: array<u32>;
// Only the training entry point uses this binding.
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;

var<workgroup> loss_part: array<f32, WG>;
var<workgroup> correct_part: array<u32, WG>;

struct Row {
    // max and sum of exp(x - max): the softmax's normalization.
    m: f32,
    s: f32,
    loss: f32,
    correct: u32,
}

// First max wins, like numpy/TF argmax.
fn row_loss(row: u32) -> Row {
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
    return Row(m, s, -log(clamp(pl, EPS, 1.0 - EPS)), select(0u, 1u, arg == label));
}

// Adds every invocation's (loss sum, correct count) into the metrics.
fn add_to_metrics(lid: u32, s: f32, c: u32) {
    loss_part[lid] = s;
    correct_part[lid] = c;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if (lid < half) {
            loss_part[lid] += loss_part[lid + half];
            correct_part[lid] += correct_part[lid + half];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        metrics[0] = bitcast<u32>(bitcast<f32>(metrics[0]) + loss_part[0]);
        metrics[1] += correct_part[0];
        metrics[2] += p.batch;
    }
}

@compute @workgroup_size(WG)
fn xent_metrics(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    var c = 0u;
    for (var row = lid; row < p.batch; row += WG) {
        let r = row_loss(row);
        s += r.loss;
        c += r.correct;
    }
    add_to_metrics(lid, s, c);
}

@compute @workgroup_size(WG)
fn xent_metrics_backward(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    var c = 0u;
    for (var row = lid; row < p.batch; row += WG) {
        let r = row_loss(row);
        s += r.loss;
        c += r.correct;
        let base = row * p.classes;
        let label = labels[row];
        for (var j = 0u; j < p.classes; j++) {
            let prob = exp(logits[base + j] - r.m) / r.s;
            let onehot = select(0.0, 1.0, j == label);
            dlogits[base + j] = (prob - onehot) * p.inv_batch;
        }
    }
    add_to_metrics(lid, s, c);
}
