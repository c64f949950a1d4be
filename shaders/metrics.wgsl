// Adds one batch's loss sum, correct count and example count into a running
// metrics buffer [loss_sum: f32 (as bits), correct: u32, examples: u32, pad],
// so the host reads it back once every many steps. One workgroup; each
// invocation sums a fixed strided subset serially, then a tree reduction in
// workgroup memory: the summation order is fixed, so results are
// deterministic (no float atomics anywhere).

struct Params {
    batch: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> loss: array<f32>;
@group(0) @binding(2) var<storage, read> correct: array<u32>;
@group(0) @binding(3) var<storage, read_write> metrics: array<u32>;

var<workgroup> loss_part: array<f32, WG>;
var<workgroup> correct_part: array<u32, WG>;

@compute @workgroup_size(WG)
fn accumulate_metrics(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    var c = 0u;
    for (var i = lid; i < p.batch; i += WG) {
        s += loss[i];
        c += correct[i];
    }
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
