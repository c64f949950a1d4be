// Column sums of a row-major [rows, cols] matrix (the bias gradient:
// db[c] = sum over rows of dy[r, c]). Rows reach 32,768 for conv layers and
// columns are few (10..200), so one invocation per column would leave the
// device idle: pass 1 gives each invocation one (row chunk, column) pair and
// a serial sum over CHUNK rows; pass 2 sums the chunks of each column
// serially. With a single chunk, pass 1 writes db directly.

struct Params {
    rows: u32,
    cols: u32,
    // Rows per chunk in pass 1; number of chunks in pass 2.
    chunk: u32,
    chunks: u32,
}

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

// dst[k, c] = sum of src[r, c] for r in chunk k.
@compute @workgroup_size(WG)
fn column_partial_sums(@builtin(global_invocation_id) gid: vec3<u32>,
                       @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * WG;
    if (idx >= p.chunks * p.cols) {
        return;
    }
    let k = idx / p.cols;
    let c = idx % p.cols;
    let r0 = k * p.chunk;
    let r1 = min(r0 + p.chunk, p.rows);
    var s = 0.0;
    for (var r = r0; r < r1; r++) {
        s += src[r * p.cols + c];
    }
    dst[idx] = s;
}

// dst[c] = sum over k of src[k, c].
@compute @workgroup_size(WG)
fn column_combine(@builtin(global_invocation_id) gid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = gid.x + gid.y * nwg.x * WG;
    if (c >= p.cols) {
        return;
    }
    var s = 0.0;
    for (var k = 0u; k < p.chunks; k++) {
        s += src[k * p.cols + c];
    }
    dst[c] = s;
}
