// GEMM without workgroup memory: each invocation computes an 8×8 block of
// C = op(A)·op(B) in registers, four k at a time. This is what CPU-backed
// adapters (lavapipe, llvmpipe) want: there every storage load is a scalar
// loop over the SIMD lanes, so the kernel is shaped to maximise FMAs per
// load instruction (16 per vec4 load in every transpose layout).
//
// 4×4 sub-blocks are held as mat4x4 so that each layout's natural vec4 loads
// become matrix columns and `transpose` (free: register renaming) turns them
// into the orientation the product needs:
//   Am = A_blk^T  (column i = row r+i of op(A) over k)
//   Bm = B_blk^T  (column j = row kk+j of op(B) over n)
//   Ct = C_blk^T  (column i = row r+i of C over n),  Ct += Bm · Am.

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
override WG: u32 = 64u;

// Sub-blocks of 4×4 per invocation along M and N: an 8×8 block.
const RM: u32 = 2u;
const RN: u32 = 2u;

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

// Am for rows r..r+3, k kk..kk+3. Rows past M are clamped (their results are
// never stored); k past K reads as zero.
fn load_a(r: u32, kk: u32) -> mat4x4<f32> {
    if (VEC_A && !TRANS_A) {
        // K % 4 == 0, so kk..kk+3 are in range and 16-byte aligned.
        var cols: array<vec4<f32>, 4>;
        for (var i = 0u; i < 4u; i++) {
            let row = min(r + i, p.m - 1u);
            cols[i] = a[(row * p.k + kk) >> 2u];
        }
        return mat4x4<f32>(cols[0], cols[1], cols[2], cols[3]);
    }
    if (VEC_A && TRANS_A) {
        // M % 4 == 0 and r % 4 == 0: a block past M lies wholly past it.
        let rr = min(r, p.m - 4u);
        var cols: array<vec4<f32>, 4>;
        for (var j = 0u; j < 4u; j++) {
            let kj = kk + j;
            let v = a[(min(kj, p.k - 1u) * p.m + rr) >> 2u];
            cols[j] = select(vec4<f32>(0.0), v, kj < p.k);
        }
        return transpose(mat4x4<f32>(cols[0], cols[1], cols[2], cols[3]));
    }
    var s: mat4x4<f32>;
    for (var i = 0u; i < 4u; i++) {
        let row = min(r + i, p.m - 1u);
        s[i] = vec4<f32>(a_elem(row, kk), a_elem(row, kk + 1u), a_elem(row, kk + 2u),
                         a_elem(row, kk + 3u));
    }
    return s;
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

@compute @workgroup_size(WG)
fn gemm_regblock(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * WG;
    let nb = (p.n + 4u * RN - 1u) / (4u * RN);
    let mb = (p.m + 4u * RM - 1u) / (4u * RM);
    if (idx >= nb * mb) {
        return;
    }
    // Neighbouring invocations share the rows of A.
    let r0 = (idx / nb) * (4u * RM);
    let c0 = (idx % nb) * (4u * RN);

    var acc: array<mat4x4<f32>, RM * RN>;
    for (var kk = 0u; kk < p.k; kk += 4u) {
        var am: array<mat4x4<f32>, RM>;
        var bm: array<mat4x4<f32>, RN>;
        for (var i = 0u; i < RM; i++) {
            am[i] = load_a(r0 + 4u * i, kk);
        }
        for (var j = 0u; j < RN; j++) {
            bm[j] = load_b(kk, c0 + 4u * j);
        }
        for (var i = 0u; i < RM; i++) {
            for (var j = 0u; j < RN; j++) {
                acc[i * RN + j] += bm[j] * am[i];
            }
        }
    }

    let accumulate = (p.flags & 2u) != 0u;
    for (var i = 0u; i < 4u * RM; i++) {
        let row = r0 + i;
        if (row >= p.m) {
            break;
        }
        for (var j = 0u; j < 4u * RN; j++) {
            let col = c0 + j;
            if (col >= p.n) {
                break;
            }
            let v = acc[(i / 4u) * RN + j / 4u][i % 4u][j % 4u];
            let o = row * p.n + col;
            if (accumulate) {
                c[o] += v;
            } else {
                c[o] = finish(v, col);
            }
        }
    }
}
