// GEMM without workgroup memory: each invocation computes a block of up to
// 16×16 of C = op(A)·op(B) in registers (RM×RN 4×4 sub-blocks, the host's
// choice), four k at a time. This is what CPU-backed adapters (lavapipe,
// llvmpipe) want: there every storage load is a scalar loop over the SIMD
// lanes, so the kernel is shaped to maximise FMAs per load instruction:
// 4·RM + 4·RN vec4 loads per 64·RM·RN FMAs in every transpose layout.
// 16×16 (32 loads per 1024 FMAs) spills most of its 256 accumulators, but
// spills are cheap next to those loads: on lavapipe it ran 2.3× faster per
// thread than 8×4 (12 per 128; 512×512×1024: 17 against 7.3 GFLOP/s), and
// 32×16 or 32×32 gained little more or lost (18.7, 16.8) while cutting the
// blocks that small GEMMs spread over the threads. (An older kernel had
// 8×8 40% slower than 8×4; this one runs 8×8 at 9.8.)
//
// 4×4 sub-blocks are held as mat4x4 so that each layout's natural vec4 loads
// become matrix columns and `transpose` (free: register renaming) turns them
// into the orientation the product needs:
//   Am = A_blk^T  (column i = row r+i of op(A) over k)
//   Bm = B_blk^T  (column j = row kk+j of op(B) over n)
//   Ct = C_blk^T  (column i = row r+i of C over n),  Ct += Bm · Am.

// A stored K×M (else M×K); B stored N×K (else K×N).
override TRANS_A: bool = false;
override TRANS_B: bool = false;
// vec4 loads along the stored contiguous dimension of A / B; only legal when
// that dimension is a multiple of 4 (the host decides).
override VEC_A: bool = false;
override VEC_B: bool = false;
// vec4 stores of C: N % 4 == 0.
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
override WG: u32 = 64u;

// 4×4 sub-blocks per invocation along M and N, each 1..=4: the host picks
// the block shape (kernels::gemm::GemmConfig::RegisterBlocked).
override RM: u32 = 4u;
override RN: u32 = 4u;

@group(0) @binding(0) var<uniform> p: GemmParams; // shaders/prelude/gemm_params.wgsl
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

// Am for rows r..r+3, k kk..kk+3. Rows past M are clamped (their results are
// never stored); k past K reads as zero.
fn load_a(r: u32, kk: u32) -> mat4x4<f32> {
    if (VEC_A && !TRANS_A) {
        // K % 4 == 0, so kk..kk+3 are in range and 16-byte aligned.
        let last = p.m - 1u;
        return mat4x4<f32>(a[(min(r, last) * p.k + kk) >> 2u],
                           a[(min(r + 1u, last) * p.k + kk) >> 2u],
                           a[(min(r + 2u, last) * p.k + kk) >> 2u],
                           a[(min(r + 3u, last) * p.k + kk) >> 2u]);
    }
    if (VEC_A && TRANS_A) {
        // M % 4 == 0 and r % 4 == 0: a block past M lies wholly past it.
        let rr = min(r, p.m - 4u);
        return transpose(mat4x4<f32>(a_krow(kk, rr), a_krow(kk + 1u, rr), a_krow(kk + 2u, rr),
                                     a_krow(kk + 3u, rr)));
    }
    let last = p.m - 1u;
    return mat4x4<f32>(a_row4(min(r, last), kk), a_row4(min(r + 1u, last), kk),
                       a_row4(min(r + 2u, last), kk), a_row4(min(r + 3u, last), kk));
}

// Stored row kk of A (K×M) at columns rr..rr+3; zero past K.
fn a_krow(kk: u32, rr: u32) -> vec4<f32> {
    let v = a[(min(kk, p.k - 1u) * p.m + rr) >> 2u];
    return select(vec4<f32>(0.0), v, kk < p.k);
}

fn a_row4(row: u32, kk: u32) -> vec4<f32> {
    return vec4<f32>(a_elem(row, kk), a_elem(row, kk + 1u), a_elem(row, kk + 2u),
                     a_elem(row, kk + 3u));
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

@compute @workgroup_size(WG)
fn gemm_regblock(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, WG);
    let nb = (p.n + 4u * RN - 1u) / (4u * RN);
    let mb = (p.m + 4u * RM - 1u) / (4u * RM);
    // Invocations past the last block redo it and store nothing: no early
    // return, since divergent control flow makes llvmpipe mask (and slow
    // down) every later memory access.
    let spare = idx >= nb * mb;
    let blk = min(idx, nb * mb - 1u);
    // Neighbouring invocations share the rows of A.
    let r0 = (blk / nb) * (4u * RM);
    let c0 = (blk % nb) * (4u * RN);

    // Named values, not arrays: dynamically indexed local arrays went to
    // memory (2× slower). The guards on RM and RN are constants once the
    // overrides are set, so the driver drops the unused sub-blocks.
    var row0 = Row();
    var row1 = Row();
    var row2 = Row();
    var row3 = Row();
    for (var kk = 0u; kk < p.k; kk += 4u) {
        let b0 = load_b(kk, c0);
        var b1 = mat4x4<f32>();
        var b2 = mat4x4<f32>();
        var b3 = mat4x4<f32>();
        if (RN > 1u) {
            b1 = load_b(kk, c0 + 4u);
        }
        if (RN > 2u) {
            b2 = load_b(kk, c0 + 8u);
        }
        if (RN > 3u) {
            b3 = load_b(kk, c0 + 12u);
        }
        row0 = mac_row(row0, load_a(r0, kk), b0, b1, b2, b3);
        if (RM > 1u) {
            row1 = mac_row(row1, load_a(r0 + 4u, kk), b0, b1, b2, b3);
        }
        if (RM > 2u) {
            row2 = mac_row(row2, load_a(r0 + 8u, kk), b0, b1, b2, b3);
        }
        if (RM > 3u) {
            row3 = mac_row(row3, load_a(r0 + 12u, kk), b0, b1, b2, b3);
        }
    }
    if (spare) {
        return;
    }
    // One store loop over the rows, not 4·RM·RN inlined stores: llvmpipe's
    // GL compiler took 7 s for those at 16×16 (the epilogue's branches, 64
    // times), past wgpu's 6 s GL context lock. Only `out` goes to memory.
    var out: array<vec4<f32>, 64>;
    put(&out, 0u, row0);
    if (RM > 1u) {
        put(&out, 4u, row1);
    }
    if (RM > 2u) {
        put(&out, 8u, row2);
    }
    if (RM > 3u) {
        put(&out, 12u, row3);
    }
    // Bounds from the uniform, so that the compiler keeps the loops rolled.
    let rows = min(4u * RM, p.m - r0);
    let cols = min(RN, (p.n - c0 + 3u) / 4u);
    for (var i = 0u; i < rows; i++) {
        for (var j = 0u; j < cols; j++) {
            store_row(out[i * 4u + j], r0 + i, c0 + 4u * j);
        }
    }
}

// Rows `i`..`i`+3 of the block, row-major in fours of columns: Ct's columns
// are the block's rows.
fn put(out: ptr<function, array<vec4<f32>, 64>>, i: u32, acc: Row) {
    (*out)[i * 4u + 0u] = acc.c0[0];
    (*out)[i * 4u + 1u] = acc.c1[0];
    (*out)[i * 4u + 2u] = acc.c2[0];
    (*out)[i * 4u + 3u] = acc.c3[0];
    (*out)[(i + 1u) * 4u + 0u] = acc.c0[1];
    (*out)[(i + 1u) * 4u + 1u] = acc.c1[1];
    (*out)[(i + 1u) * 4u + 2u] = acc.c2[1];
    (*out)[(i + 1u) * 4u + 3u] = acc.c3[1];
    (*out)[(i + 2u) * 4u + 0u] = acc.c0[2];
    (*out)[(i + 2u) * 4u + 1u] = acc.c1[2];
    (*out)[(i + 2u) * 4u + 2u] = acc.c2[2];
    (*out)[(i + 2u) * 4u + 3u] = acc.c3[2];
    (*out)[(i + 3u) * 4u + 0u] = acc.c0[3];
    (*out)[(i + 3u) * 4u + 1u] = acc.c1[3];
    (*out)[(i + 3u) * 4u + 2u] = acc.c2[3];
    (*out)[(i + 3u) * 4u + 3u] = acc.c3[3];
}

// The RN accumulators (Ct, see the top) of one row of sub-blocks.
struct Row {
    c0: mat4x4<f32>,
    c1: mat4x4<f32>,
    c2: mat4x4<f32>,
    c3: mat4x4<f32>,
}

fn mac_row(acc: Row, am: mat4x4<f32>, b0: mat4x4<f32>, b1: mat4x4<f32>, b2: mat4x4<f32>,
           b3: mat4x4<f32>) -> Row {
    var out = acc;
    out.c0 = mac(acc.c0, b0, am);
    if (RN > 1u) {
        out.c1 = mac(acc.c1, b1, am);
    }
    if (RN > 2u) {
        out.c2 = mac(acc.c2, b2, am);
    }
    if (RN > 3u) {
        out.c3 = mac(acc.c3, b3, am);
    }
    return out;
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

    let o = row * p.n + c0;
    if (VEC_C) {
        // N % 4 == 0: the four columns are in range and 16-byte aligned.
        if (ACCUMULATE) {
            c[o >> 2u] += v;
        } else {
            c[o >> 2u] = finish4(v, c0, o);
        }
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        if (c0 + j >= p.n) {
            break;
        }
        let e = o + j;
        if (ACCUMULATE) {
            c[e >> 2u][e & 3u] += v[j];
        } else {
            c[e >> 2u][e & 3u] = finish(v[j], c0 + j, e);
        }
    }
}
