// GEMM for adapters with 8-lane subgroups (lavapipe): the 8 lanes of a
// subgroup compute an 8×32 block of C. Each lane loads one vec4 of A per
// four k and the subgroup shares them with `subgroupBroadcast`, so A costs
// 1/8 of a load per row instead of one; each lane owns 4 columns of C and
// loads its own 4×4 block of B. That is 128 FMAs per 5 loads, against 256
// per 16 in gemm_regblock. Needs subgroup size 8 (the host checks).
//
// The helpers repeat gemm_regblock.wgsl: a module that calls subgroup
// builtins cannot be created on devices without them, so the two kernels
// cannot share a file.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    // bit 0: add bias[n]; bit 1: accumulate into C (then no bias/epilogue).
    flags: u32,
    // 0: none, 1: ReLU, 2: LeakyReLU(slope).
    epilogue: u32,
    slope: f32,
    _pad0: u32,
    _pad1: u32,
}

// A stored K×M (else M×K); B stored N×K (else K×N).
override TRANS_A: bool = false;
override TRANS_B: bool = false;
// vec4 loads along the stored contiguous dimension of A / B; only legal when
// that dimension is a multiple of 4 (the host decides).
override VEC_A: bool = false;
override VEC_B: bool = false;
override WG: u32 = 64u; // a multiple of 8

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

fn a_at(i: u32) -> f32 {
    return a[i >> 2u][i & 3u];
}

fn b_at(i: u32) -> f32 {
    return b[i >> 2u][i & 3u];
}

// op(A)[row][kk], zero past K; `row` is already clamped into [0, M).
fn a_elem(row: u32, kk: u32) -> f32 {
    let kc = min(kk, p.k - 1u);
    var v: f32;
    if (TRANS_A) {
        v = a_at(kc * p.m + row);
    } else {
        v = a_at(row * p.k + kc);
    }
    return select(0.0, v, kk < p.k);
}

// op(B)[kk][col], zero past K; `col` is already clamped into [0, N).
fn b_elem(kk: u32, col: u32) -> f32 {
    let kc = min(kk, p.k - 1u);
    var v: f32;
    if (TRANS_B) {
        v = b_at(col * p.k + kc);
    } else {
        v = b_at(kc * p.n + col);
    }
    return select(0.0, v, kk < p.k);
}

// Bm for k kk..kk+3, columns c..c+3 (same clamping as load_a).
fn load_b(kk: u32, c0: u32) -> mat4x4<f32> {
    if (VEC_B && !TRANS_B) {
        // N % 4 == 0 and c0 % 4 == 0.
        let cc = min(c0, p.n - 4u);
        var cols: array<vec4<f32>, 4>;
        for (var j = 0u; j < 4u; j++) {
            let kj = kk + j;
            let v = b[(min(kj, p.k - 1u) * p.n + cc) >> 2u];
            cols[j] = select(vec4<f32>(0.0), v, kj < p.k);
        }
        return mat4x4<f32>(cols[0], cols[1], cols[2], cols[3]);
    }
    if (VEC_B && TRANS_B) {
        // K % 4 == 0.
        var cols: array<vec4<f32>, 4>;
        for (var j = 0u; j < 4u; j++) {
            let col = min(c0 + j, p.n - 1u);
            cols[j] = b[(col * p.k + kk) >> 2u];
        }
        return transpose(mat4x4<f32>(cols[0], cols[1], cols[2], cols[3]));
    }
    var s: mat4x4<f32>;
    for (var j = 0u; j < 4u; j++) {
        let kj = kk + j;
        s[j] = vec4<f32>(b_elem(kj, min(c0, p.n - 1u)), b_elem(kj, min(c0 + 1u, p.n - 1u)),
                         b_elem(kj, min(c0 + 2u, p.n - 1u)), b_elem(kj, min(c0 + 3u, p.n - 1u)));
    }
    return s;
}

fn finish(v: f32, col: u32) -> f32 {
    var x = v;
    if ((p.flags & 1u) != 0u) {
        x += bias[col];
    }
    if (p.epilogue == 1u) {
        x = max(x, 0.0);
    } else if (p.epilogue == 2u) {
        x = select(x * p.slope, x, x > 0.0);
    }
    return x;
}

// This lane's share of A for rows r0..r0+7, k kk..kk+3. Without TRANS_A:
// row r0+lane over the four k. With TRANS_A: rows r0+4(lane/4)..+3 at
// k = kk + lane%4 (a vec4 along M, A's contiguous dimension).
fn load_a_lane(r0: u32, kk: u32, lane: u32) -> vec4<f32> {
    if (!TRANS_A) {
        let row = min(r0 + lane, p.m - 1u);
        if (VEC_A) {
            return a[(row * p.k + kk) >> 2u];
        }
        return vec4<f32>(a_elem(row, kk), a_elem(row, kk + 1u), a_elem(row, kk + 2u),
                         a_elem(row, kk + 3u));
    }
    let kj = kk + (lane & 3u);
    let rr = r0 + 4u * (lane >> 2u);
    if (VEC_A) {
        let v = a[(min(kj, p.k - 1u) * p.m + min(rr, p.m - 4u)) >> 2u];
        return select(vec4<f32>(0.0), v, kj < p.k);
    }
    return vec4<f32>(a_elem(min(rr, p.m - 1u), kj), a_elem(min(rr + 1u, p.m - 1u), kj),
                     a_elem(min(rr + 2u, p.m - 1u), kj), a_elem(min(rr + 3u, p.m - 1u), kj));
}

@compute @workgroup_size(WG)
fn gemm_subgroup(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(subgroup_invocation_id) lane: u32) {
    // The block index comes from lane 0 so that it is uniform across the
    // subgroup whatever the hardware's lane order: every lane must reach
    // every broadcast.
    let blk = subgroupBroadcast((gid.x + gid.y * nwg.x * WG) / 8u, 0u);
    let nb = (p.n + 31u) / 32u;
    let mb = (p.m + 7u) / 8u;
    if (blk >= nb * mb) {
        return;
    }
    let r0 = (blk / nb) * 8u;
    let c0 = (blk % nb) * 32u + 4u * lane;

    var acc: array<vec4<f32>, 8>; // rows r0..r0+7, this lane's 4 columns
    for (var kk = 0u; kk < p.k; kk += 4u) {
        let bm = load_b(kk, c0);
        let mine = load_a_lane(r0, kk, lane);
        // subgroupBroadcast needs a constant lane: unrolled by hand.
        let v0 = subgroupBroadcast(mine, 0u);
        let v1 = subgroupBroadcast(mine, 1u);
        let v2 = subgroupBroadcast(mine, 2u);
        let v3 = subgroupBroadcast(mine, 3u);
        let v4 = subgroupBroadcast(mine, 4u);
        let v5 = subgroupBroadcast(mine, 5u);
        let v6 = subgroupBroadcast(mine, 6u);
        let v7 = subgroupBroadcast(mine, 7u);
        var rows: array<vec4<f32>, 8>; // row i of op(A) over the four k
        if (TRANS_A) {
            let lo = transpose(mat4x4<f32>(v0, v1, v2, v3));
            let hi = transpose(mat4x4<f32>(v4, v5, v6, v7));
            rows = array<vec4<f32>, 8>(lo[0], lo[1], lo[2], lo[3], hi[0], hi[1], hi[2], hi[3]);
        } else {
            rows = array<vec4<f32>, 8>(v0, v1, v2, v3, v4, v5, v6, v7);
        }
        for (var i = 0u; i < 8u; i++) {
            acc[i] += bm * rows[i];
        }
    }

    let accumulate = (p.flags & 2u) != 0u;
    for (var i = 0u; i < 8u; i++) {
        let row = r0 + i;
        if (row >= p.m) {
            break;
        }
        for (var j = 0u; j < 4u; j++) {
            let col = c0 + j;
            if (col >= p.n) {
                break;
            }
            let o = row * p.n + col;
            if (accumulate) {
                c[o] += acc[i][j];
            } else {
                c[o] = finish(acc[i][j], col);
            }
        }
    }
}
