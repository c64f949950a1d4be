// GEMM with workgroup-memory tiles, the classic shape for discrete GPUs: a
// workgroup of WG_X×WG_Y invocations computes a BM×BN tile of C, staging
// BK×BM of op(A) and BK×BN of op(B) in workgroup memory per step; each
// invocation accumulates a TM×TN register block. Everything moves in vec4s:
// storage loads along each matrix's contiguous dimension (where the host
// says it is a multiple of 4), tiles held as vec4 rows along M and N (so a
// 4×4 block loaded along K is transposed in registers on the way in), and
// vec4 stores of C. An invocation's TM rows are contiguous (one vec4 read of
// the A tile per 4 rows, the same address across a row of invocations: a
// broadcast); its TN columns are vec4 groups strided by WG_X, so that
// neighbouring invocations read neighbouring vec4s of the B tile and store
// neighbouring vec4s of C.

// A stored K×M (else M×K); B stored N×K (else K×N).
override TRANS_A: bool = false;
override TRANS_B: bool = false;
// vec4 loads along the stored contiguous dimension of A / B, and vec4
// stores of C (N % 4 == 0); only legal when that dimension is a multiple of 4
// (the host decides).
override VEC_A: bool = false;
override VEC_B: bool = false;
override VEC_C: bool = false;
// The epilogue as pipeline constants rather than uniforms: lavapipe ran
// the gradient epilogue's and the bias's per-element loads even where a
// uniform said to skip them (32768×32×8: 2.1 → 1.2 ms). EPILOGUE is
// kernels::gemm::Epilogue::encode's code (shaders/prelude/epilogue.wgsl);
// BIAS adds the bias first; ACCUMULATE adds into C instead (no bias, no
// epilogue).
override EPILOGUE: u32 = 0u;
override BIAS: bool = false;
override ACCUMULATE: bool = false;
override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;
// Multiples of 4.
override BK: u32 = 16u;
// The register block: TM in {4, 8} rows, TN4 in {1, 2} vec4s of columns.
override TM: u32 = 4u;
override TN4: u32 = 1u;

// Function-scope arrays need constant sizes: the register block's largest
// shape. The loops run to the override bounds, which are constants once the
// pipeline is made, so a driver unrolls them and keeps the block in
// registers.
const MAX_TM: u32 = 8u;
const MAX_TN4: u32 = 2u;

override BM: u32 = WG_Y * TM;
override BN: u32 = WG_X * TN4 * 4u;
override A_TILE4: u32 = BK * BM / 4u;
override B_TILE4: u32 = BK * BN / 4u;

@group(0) @binding(0) var<uniform> p: GemmParams; // shaders/prelude/gemm_params.wgsl
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<vec4<f32>>;

var<workgroup> a_tile: array<vec4<f32>, A_TILE4>; // [k][m / 4]
var<workgroup> b_tile: array<vec4<f32>, B_TILE4>; // [k][n / 4]

fn a_at(i: u32) -> f32 {
    return a[i >> 2u][i & 3u];
}

fn b_at(i: u32) -> f32 {
    return b[i >> 2u][i & 3u];
}

// Stored row `row` of a matrix with `cols` columns (contiguous), at columns
// c0..c0+3: zero past `rows` or `cols`.
fn row4_a(row: u32, c0: u32, rows: u32, cols: u32) -> vec4<f32> {
    if (row >= rows) {
        return vec4<f32>(0.0);
    }
    let base = row * cols;
    if (VEC_A) {
        // cols % 4 == 0 and c0 % 4 == 0: all four in range or none.
        return select(vec4<f32>(0.0), a[(base + c0) >> 2u], c0 < cols);
    }
    var v = vec4<f32>(0.0);
    for (var t = 0u; t < 4u; t++) {
        if (c0 + t < cols) {
            v[t] = a_at(base + c0 + t);
        }
    }
    return v;
}

fn row4_b(row: u32, c0: u32, rows: u32, cols: u32) -> vec4<f32> {
    if (row >= rows) {
        return vec4<f32>(0.0);
    }
    let base = row * cols;
    if (VEC_B) {
        return select(vec4<f32>(0.0), b[(base + c0) >> 2u], c0 < cols);
    }
    var v = vec4<f32>(0.0);
    for (var t = 0u; t < 4u; t++) {
        if (c0 + t < cols) {
            v[t] = b_at(base + c0 + t);
        }
    }
    return v;
}

// Writes a 4×4 block, given as four vec4 rows along K (`along_k`) or along
// M/N, into a tile at k-row kb·4 and vec4 column `col` of `width4`.
fn put_a(v: array<vec4<f32>, 4>, along_k: bool, kb: u32, col: u32) {
    for (var t = 0u; t < 4u; t++) {
        var w = v[t];
        if (along_k) {
            w = vec4<f32>(v[0][t], v[1][t], v[2][t], v[3][t]);
        }
        a_tile[(kb * 4u + t) * (BM / 4u) + col] = w;
    }
}

fn put_b(v: array<vec4<f32>, 4>, along_k: bool, kb: u32, col: u32) {
    for (var t = 0u; t < 4u; t++) {
        var w = v[t];
        if (along_k) {
            w = vec4<f32>(v[0][t], v[1][t], v[2][t], v[3][t]);
        }
        b_tile[(kb * 4u + t) * (BN / 4u) + col] = w;
    }
}

// Stages op(A)[m0.., k0..] and op(B)[k0.., n0..] as 4×4 blocks; consecutive
// invocations take consecutive blocks along each matrix's stored contiguous
// dimension, so their loads are coalesced.
fn load_tiles(m0: u32, n0: u32, k0: u32, li: u32) {
    let threads = WG_X * WG_Y;
    let kbs = BK / 4u;
    let mbs = BM / 4u;
    let nbs = BN / 4u;
    for (var e = li; e < kbs * mbs; e += threads) {
        var v: array<vec4<f32>, 4>;
        if (TRANS_A) {
            // K×M: rows along K, contiguous along M.
            let mb = e % mbs;
            let kb = e / mbs;
            for (var t = 0u; t < 4u; t++) {
                v[t] = row4_a(k0 + kb * 4u + t, m0 + mb * 4u, p.k, p.m);
            }
            put_a(v, false, kb, mb);
        } else {
            // M×K: rows along M, contiguous along K.
            let kb = e % kbs;
            let mb = e / kbs;
            for (var t = 0u; t < 4u; t++) {
                v[t] = row4_a(m0 + mb * 4u + t, k0 + kb * 4u, p.m, p.k);
            }
            put_a(v, true, kb, mb);
        }
    }
    for (var e = li; e < kbs * nbs; e += threads) {
        var v: array<vec4<f32>, 4>;
        if (TRANS_B) {
            // N×K: rows along N, contiguous along K.
            let kb = e % kbs;
            let nb = e / kbs;
            for (var t = 0u; t < 4u; t++) {
                v[t] = row4_b(n0 + nb * 4u + t, k0 + kb * 4u, p.n, p.k);
            }
            put_b(v, true, kb, nb);
        } else {
            // K×N: rows along K, contiguous along N.
            let nb = e % nbs;
            let kb = e / nbs;
            for (var t = 0u; t < 4u; t++) {
                v[t] = row4_b(k0 + kb * 4u + t, n0 + nb * 4u, p.k, p.n);
            }
            put_b(v, false, kb, nb);
        }
    }
}

// Element e (column col) of C as stored: see shaders/prelude/epilogue.wgsl.
fn finish(v: f32, col: u32, e: u32) -> f32 {
    if (EPILOGUE >= 3u) {
        return apply_grad_epilogue(v, bias[e], EPILOGUE, p.slope);
    }
    var x = v;
    if (BIAS) {
        x += bias[col];
    }
    return apply_epilogue(x, EPILOGUE, p.slope);
}

fn finish4(v: vec4<f32>, col: u32, e: u32) -> vec4<f32> {
    if (EPILOGUE >= 3u) {
        let a = vec4<f32>(bias[e], bias[e + 1u], bias[e + 2u], bias[e + 3u]);
        return apply_grad_epilogue4(v, a, EPILOGUE, p.slope);
    }
    var x = v;
    if (BIAS) {
        x += vec4<f32>(bias[col], bias[col + 1u], bias[col + 2u], bias[col + 3u]);
    }
    return apply_epilogue4(x, EPILOGUE, p.slope);
}

// Writes columns col..col+3 of C's row `row` (inside M; columns past N are
// dropped).
fn store4(v: vec4<f32>, row: u32, col: u32) {
    if (col >= p.n) {
        return;
    }

    let o = row * p.n + col;
    if (VEC_C) {
        // N % 4 == 0: the four columns are in range and 16-byte aligned.
        if (ACCUMULATE) {
            c[o >> 2u] += v;
        } else {
            c[o >> 2u] = finish4(v, col, o);
        }
        return;
    }
    for (var t = 0u; t < 4u; t++) {
        if (col + t >= p.n) {
            break;
        }
        let e = o + t;
        if (ACCUMULATE) {
            c[e >> 2u][e & 3u] += v[t];
        } else {
            c[e >> 2u][e & 3u] = finish(v[t], col + t, e);
        }
    }
}

@compute @workgroup_size(WG_X, WG_Y)
fn gemm_tiled(@builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>,
              @builtin(local_invocation_index) li: u32) {
    // Tiles are numbered flat (folded into y past 65,535 workgroups); the
    // test depends on the workgroup only, so the barriers stay uniform.
    let tile = flat_index(wid, nwg, 1u);
    let nt = (p.n + BN - 1u) / BN;
    let mt = (p.m + BM - 1u) / BM;
    if (tile >= nt * mt) {
        return;
    }
    let m0 = (tile / nt) * BM;
    let n0 = (tile % nt) * BN;

    var acc: array<vec4<f32>, MAX_TM * MAX_TN4>;
    var ar: array<vec4<f32>, MAX_TM / 4u>;
    var br: array<vec4<f32>, MAX_TN4>;
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        load_tiles(m0, n0, k0, li);
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            for (var i = 0u; i < TM / 4u; i++) {
                ar[i] = a_tile[kk * (BM / 4u) + lid.y * (TM / 4u) + i];
            }
            for (var j = 0u; j < TN4; j++) {
                br[j] = b_tile[kk * (BN / 4u) + lid.x + j * WG_X];
            }
            for (var i = 0u; i < TM; i++) {
                let av = vec4<f32>(ar[i / 4u][i % 4u]);
                for (var j = 0u; j < TN4; j++) {
                    acc[i * MAX_TN4 + j] = fma(av, br[j], acc[i * MAX_TN4 + j]);
                }
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < TM; i++) {
        let row = m0 + lid.y * TM + i;
        if (row >= p.m) {
            break;
        }
        for (var j = 0u; j < TN4; j++) {
            store4(acc[i * MAX_TN4 + j], row, n0 + (lid.x + j * WG_X) * 4u);
        }
    }
}
