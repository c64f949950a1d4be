// Column sums of a row-major [rows, cols] matrix (the bias gradient:
// db[c] = sum over rows of dy[r, c]). Rows reach 32,768 for conv layers and
// columns are few (10..200), so one invocation per column would leave the
// device idle: pass 1 gives each invocation one (row chunk, column) pair and
// a serial sum over `chunk` rows into a [chunks, cols] scratch; pass 2 is
// the same kernel over that scratch as a single chunk. With a single chunk,
// pass 1 writes db directly.
//
// The source is viewed as vec4s (buffers are padded to 16 bytes): when cols
// is a multiple of 4, each invocation sums 4 adjacent columns with one load
// per row, which is what counts on lavapipe; otherwise the scalar entry
// picks one component of each vec4.

struct Params {
    rows: u32,
    cols: u32,
    // Rows per chunk and the number of chunks.
    chunk: u32,
    chunks: u32,
}

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

// dst[k, c] = sum of src[r, c] for r in chunk k.
@compute @workgroup_size(WG)
fn column_sums_scalar(@builtin(global_invocation_id) gid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, WG);
    if (idx >= p.chunks * p.cols) {
        return;
    }
    let k = idx / p.cols;
    let c = idx % p.cols;
    let r0 = k * p.chunk;
    let r1 = min(r0 + p.chunk, p.rows);
    var s = 0.0;
    for (var r = r0; r < r1; r++) {
        let e = r * p.cols + c;
        s += src[e / 4u][e % 4u];
    }
    dst[idx] = s;
}

// The same for 4 adjacent columns per invocation (cols a multiple of 4).
@compute @workgroup_size(WG)
fn column_sums_vec4(@builtin(global_invocation_id) gid: vec3<u32>,
                    @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, WG);
    let cols4 = p.cols / 4u;
    if (idx >= p.chunks * cols4) {
        return;
    }
    let k = idx / cols4;
    let c4 = idx % cols4;
    let r0 = k * p.chunk;
    let r1 = min(r0 + p.chunk, p.rows);
    var s = vec4<f32>(0.0);
    for (var r = r0; r < r1; r++) {
        s += src[r * cols4 + c4];
    }
    let o = k * p.cols + 4u * c4;
    dst[o] = s.x;
    dst[o + 1u] = s.y;
    dst[o + 2u] = s.z;
    dst[o + 3u] = s.w;
}
