// GEMM for adapters with 8-lane subgroups (lavapipe): the 8 lanes of a
// subgroup compute an 8×32 block of C. Each lane loads one vec4 of A per
// four k and the subgroup shares them with `subgroupBroadcast`, so A costs
// 1/8 of a load per row instead of one; each lane owns 4 columns of C and
// loads its own 4×4 block of B. That is 128 FMAs per 5 loads, against 128
// per 12 in gemm_regblock. Needs subgroup size 8 (the host checks).
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
// vec4 stores of C: N % 4 == 0.
override VEC_C: bool = false;
override WG: u32 = 64u; // a multiple of 8

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<vec4<f32>>;

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
        return mat4x4<f32>(b_krow(kk, cc), b_krow(kk + 1u, cc), b_krow(kk + 2u, cc),
                           b_krow(kk + 3u, cc));
    }
    let last = p.n - 1u;
    if (VEC_B && TRANS_B) {
        // K % 4 == 0.
        return transpose(mat4x4<f32>(b[(min(c0, last) * p.k + kk) >> 2u],
                                     b[(min(c0 + 1u, last) * p.k + kk) >> 2u],
                                     b[(min(c0 + 2u, last) * p.k + kk) >> 2u],
                                     b[(min(c0 + 3u, last) * p.k + kk) >> 2u]));
    }
    return mat4x4<f32>(b_row4(kk, c0), b_row4(kk + 1u, c0), b_row4(kk + 2u, c0),
                       b_row4(kk + 3u, c0));
}

// Stored row kk of B (K×N) at columns cc..cc+3; zero past K.
fn b_krow(kk: u32, cc: u32) -> vec4<f32> {
    let v = b[(min(kk, p.k - 1u) * p.n + cc) >> 2u];
    return select(vec4<f32>(0.0), v, kk < p.k);
}

// op(B)[kk][c0..c0+3], columns clamped into [0, N).
fn b_row4(kk: u32, c0: u32) -> vec4<f32> {
    let last = p.n - 1u;
    return vec4<f32>(b_elem(kk, min(c0, last)), b_elem(kk, min(c0 + 1u, last)),
                     b_elem(kk, min(c0 + 2u, last)), b_elem(kk, min(c0 + 3u, last)));
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

fn finish4(v: vec4<f32>, col: u32) -> vec4<f32> {
    var x = v;
    if ((p.flags & 1u) != 0u) {
        x += vec4<f32>(bias[col], bias[col + 1u], bias[col + 2u], bias[col + 3u]);
    }
    if (p.epilogue == 1u) {
        x = max(x, vec4<f32>(0.0));
    } else if (p.epilogue == 2u) {
        x = select(x * p.slope, x, x > vec4<f32>(0.0));
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

    // Rows r0..r0+7 of C at this lane's 4 columns.
    var acc0 = vec4<f32>();
    var acc1 = vec4<f32>();
    var acc2 = vec4<f32>();
    var acc3 = vec4<f32>();
    var acc4 = vec4<f32>();
    var acc5 = vec4<f32>();
    var acc6 = vec4<f32>();
    var acc7 = vec4<f32>();
    for (var kk = 0u; kk < p.k; kk += 4u) {
        let bm = load_b(kk, c0);
        let mine = load_a_lane(r0, kk, lane);
        // subgroupBroadcast needs a constant lane: unrolled by hand.
        var v0 = subgroupBroadcast(mine, 0u);
        var v1 = subgroupBroadcast(mine, 1u);
        var v2 = subgroupBroadcast(mine, 2u);
        var v3 = subgroupBroadcast(mine, 3u);
        var v4 = subgroupBroadcast(mine, 4u);
        var v5 = subgroupBroadcast(mine, 5u);
        var v6 = subgroupBroadcast(mine, 6u);
        var v7 = subgroupBroadcast(mine, 7u);
        if (TRANS_A) {
            // Lanes held columns of rows 0..3 / 4..7 at k = kk + lane%4.
            let lo = transpose(mat4x4<f32>(v0, v1, v2, v3));
            let hi = transpose(mat4x4<f32>(v4, v5, v6, v7));
            v0 = lo[0];
            v1 = lo[1];
            v2 = lo[2];
            v3 = lo[3];
            v4 = hi[0];
            v5 = hi[1];
            v6 = hi[2];
            v7 = hi[3];
        }
        acc0 = col_mac(acc0, bm, v0);
        acc1 = col_mac(acc1, bm, v1);
        acc2 = col_mac(acc2, bm, v2);
        acc3 = col_mac(acc3, bm, v3);
        acc4 = col_mac(acc4, bm, v4);
        acc5 = col_mac(acc5, bm, v5);
        acc6 = col_mac(acc6, bm, v6);
        acc7 = col_mac(acc7, bm, v7);
    }
    store(mat4x4<f32>(acc0, acc1, acc2, acc3), r0, c0);
    store(mat4x4<f32>(acc4, acc5, acc6, acc7), r0 + 4u, c0);
}
// acc + bm·am with explicit FMAs (the driver does not contract a*b+c).
fn mac(acc: mat4x4<f32>, bm: mat4x4<f32>, am: mat4x4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(col_mac(acc[0], bm, am[0]), col_mac(acc[1], bm, am[1]),
                       col_mac(acc[2], bm, am[2]), col_mac(acc[3], bm, am[3]));
}

fn col_mac(acc: vec4<f32>, bm: mat4x4<f32>, v: vec4<f32>) -> vec4<f32> {
    return fma(bm[3], vec4<f32>(v.w), fma(bm[2], vec4<f32>(v.z),
               fma(bm[1], vec4<f32>(v.y), fma(bm[0], vec4<f32>(v.x), acc))));
}

// Writes Ct (column i = row r+i of C over columns c0..c0+3) inside M×N.
fn store(ct: mat4x4<f32>, r: u32, c0: u32) {
    store_row(ct[0], r, c0);
    store_row(ct[1], r + 1u, c0);
    store_row(ct[2], r + 2u, c0);
    store_row(ct[3], r + 3u, c0);
}

fn store_row(v: vec4<f32>, row: u32, c0: u32) {
    if (row >= p.m || c0 >= p.n) {
        return;
    }
    let accumulate = (p.flags & 2u) != 0u;
    let o = row * p.n + c0;
    if (VEC_C) {
        // N % 4 == 0: the four columns are in range and 16-byte aligned.
        if (accumulate) {
            c[o >> 2u] += v;
        } else {
            c[o >> 2u] = finish4(v, c0);
        }
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        if (c0 + j >= p.n) {
            break;
        }
        let e = o + j;
        if (accumulate) {
            c[e >> 2u][e & 3u] += v[j];
        } else {
            c[e >> 2u][e & 3u] = finish(v[j], c0 + j);
        }
    }
}
