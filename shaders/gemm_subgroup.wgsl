// GEMM for adapters with 8-lane subgroups (lavapipe). In this driver every
// storage load is a scalar loop over the SIMD lanes, so the kernel is shaped
// to minimise load instructions per FMA (see shared/notes/lavapipe-gemm.md).
//
// The kernel computes D[R×C] = O·S, D[r][c] = Σ_k O[r][k]·S[k][c], where
// - O ("own") is stored R×K with K contiguous (row stride `ldo`, a multiple
//   of 4): each lane owns 2 rows of D and loads its rows of O as vec4s;
// - S ("shared") is stored K×C (C contiguous) or, with S_KCONTIG, C×K:
//   each 8×4·SLOTS block of S is loaded once per subgroup, one eighth per
//   lane, and handed round with `subgroupBroadcast`.
// A subgroup computes a 16×(4·SLOTS) block of D: per 8 k, each lane issues 4
// loads of O and SLOTS of S for 2·4·SLOTS·8 FMAs, into 8·SLOTS accumulators.
// D is C = op(A)·op(B) (O = op(A), S = op(B)), or with OUT_T its transpose
// Cᵀ = op(B)ᵀ·op(A)ᵀ, stored back into C (see gemm.rs for which is used).
// Needs subgroup size 8 (the host checks).
//
// A module that calls subgroup builtins cannot be created on devices
// without them, so this kernel and gemm_regblock.wgsl cannot share a file:
// their common epilogue comes from shaders/prelude/epilogue.wgsl.

struct Params {
    // D is r × c; K terms per output.
    r: u32,
    c: u32,
    k: u32,
    // Row stride of O in elements (≥ K, a multiple of 4).
    ldo: u32,
    // LeakyReLU's slope, for the epilogue (EPILOGUE).
    slope: f32,
    // With DB: where the sums over k of op(B) go in c, in elements.
    db_off: u32,
    _pad0: u32,
    _pad1: u32,
}

// S stored C×K (else K×C).
override S_KCONTIG: bool = false;
// S's contiguous dimension is a multiple of 4: vec4 loads of S.
override VEC_S: bool = false;
// D is Cᵀ: D[r][c] lives at C[c·R + r] and the bias goes by r.
override OUT_T: bool = false;
// vec4 stores of C (not OUT_T, C % 4 == 0).
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
override WG: u32 = 64u; // a multiple of 8
// Columns per block, in slots of 4 (1..=8): more slots mean fewer loads per
// FMA (measured on lavapipe: 2×32 per lane beats 2×12 at large N) but more
// padding at small N; the host or the tuner picks.
override SLOTS: u32 = 3u;
// With OUT_T, also write db[n] = Σ_k op(B)[k][n] at c[db_off + n]: a
// weight-gradient GEMM's bias gradient, summed from the owned rows of
// op(B)ᵀ the lanes load anyway, instead of another pass.
override DB: bool = false;

// Implicit-GEMM convolution: 1 reads O, 2 reads S (K×C) as im2col(x) for
// the window below, straight from the NHWC input x bound in its place,
// without building the matrix, in vec4s where in_c % 4 == 0 (each vec4 of
// an im2col row then lies within one tap), else element by element. 3 is the input
// gradient of one stride phase (the PH_ constants): O is dy gathered per
// tap of the phase (`col2im_at`), S (C×K) the kernel [kh, kw, in_c, out_c]
// read per tap as [in_c, taps·out_c], and D's rows are the phase's pixels
// of dx; needs out_c % 4 == 0. The defaults keep every divisor non-zero in
// pipelines that are not convolutions.
override IMPLICIT: u32 = 0u;
override OUT_C: u32 = 4u;
override IN_H: u32 = 1u;
override IN_W: u32 = 1u;
override IN_C: u32 = 4u;
override OUT_H: u32 = 1u;
override OUT_W: u32 = 1u;
override KW: u32 = 1u;
override STRIDE_H: u32 = 1u;
override STRIDE_W: u32 = 1u;
override PAD_TOP: u32 = 0u;
override PAD_LEFT: u32 = 0u;
override PH_Y: u32 = 0u;
override PH_X: u32 = 0u;
override PH_ROWS: u32 = 1u;
override PH_COLS: u32 = 1u;
override PH_KY0: u32 = 0u;
override PH_KX0: u32 = 0u;
override PH_TAPS_W: u32 = 1u;

fn window() -> ConvWindow {
    return ConvWindow(IN_H, IN_W, IN_C, OUT_H, OUT_W, KW, STRIDE_H, STRIDE_W, PAD_TOP, PAD_LEFT);
}

fn phase() -> ConvPhase {
    return ConvPhase(PH_Y, PH_X, PH_ROWS, PH_COLS, PH_KY0, PH_KX0, PH_TAPS_W);
}

// Where D's row `row` is stored in C: the phase's pixel of dx (IMPLICIT 3),
// else itself.
fn out_row(row: u32) -> u32 {
    if (IMPLICIT == 3u) {
        return phase_pixel(row, window(), phase());
    }
    return row;
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> o: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> s: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<vec4<f32>>;

// O[row][kk..kk+3]; `row` is clamped into [0, R) by the caller; zero past K
// (kk is a multiple of 4 and ldo ≥ K, so the vec4 is within the row).
fn load_o(row: u32, kk: u32) -> vec4<f32> {
    if (IMPLICIT == 1u) {
        if (IN_C % 4u != 0u) {
            return vec4<f32>(im2col_scalar(row, kk), im2col_scalar(row, kk + 1u),
                             im2col_scalar(row, kk + 2u), im2col_scalar(row, kk + 3u));
        }
        let at = im2col_at(row, min(kk, p.k - 4u), window());
        return select(vec4<f32>(0.0), o[at.x >> 2u], at.y == 1u && kk < p.k);
    }
    if (IMPLICIT == 3u) {
        let at = col2im_at(row, min(kk, p.k - 4u), window(), phase(), OUT_C);
        return select(vec4<f32>(0.0), o[at.x >> 2u], at.y == 1u && kk < p.k);
    }
    let v = o[(row * p.ldo + min(kk, p.ldo - 4u)) >> 2u];
    return select(vec4<f32>(0.0), v, kk < p.k);
}

// im2col(x)[row][col], zero past K: the forward pass's gather one element
// at a time, where in_c % 4 != 0 puts a vec4 of the row across taps (the
// first convolution's 3 channels: a quarter of the loads' width, but no
// im2col matrix to build and repack).
fn im2col_scalar(row: u32, col: u32) -> f32 {
    let at = im2col_at(row, min(col, p.k - 1u), window());
    return select(0.0, o[at.x >> 2u][at.x & 3u], at.y == 1u && col < p.k);
}

// im2col(x)[kr][col] as S (K×C), zero past K; columns past C are clamped
// (never stored). The weight gradient's gather where in_c % 4 != 0.
fn im2col_s(kr: u32, col: u32) -> f32 {
    let at = im2col_at(min(kr, p.k - 1u), min(col, p.c - 1u), window());
    return select(0.0, s[at.x >> 2u][at.x & 3u], at.y == 1u && kr < p.k);
}

fn s_at(i: u32) -> f32 {
    return s[i >> 2u][i & 3u];
}

// S[kr][col] stored C×K; `col` already clamped; zero past K.
fn s_kc(kr: u32, col: u32) -> f32 {
    return select(0.0, s_at(col * p.k + min(kr, p.k - 1u)), kr < p.k);
}

// This lane's slot q of the S block at k kk..kk+7, columns c0..c0+11.
// K×C: lane l holds S[kk+l][c0+4q .. +3]. C×K: lane l holds column
// c0 + 4q + l/2 at k kk + 4(l%2) .. +3. Columns past C are clamped (never
// stored), k past K reads as zero.
fn load_s(kk: u32, c0: u32, lane: u32, q: u32) -> vec4<f32> {
    let last = p.c - 1u;
    if (S_KCONTIG) {
        let col = min(c0 + 4u * q + (lane >> 1u), last);
        let k0 = kk + 4u * (lane & 1u);
        if (IMPLICIT == 3u) {
            // S[k = (tap, o)][col = c] = W[tap][c][o]: four o of one tap.
            let kc = min(k0, p.k - 4u);
            let at = (phase_tap(kc / OUT_C, window(), phase()) * p.c + col) * OUT_C + kc % OUT_C;
            return select(vec4<f32>(0.0), s[at >> 2u], k0 < p.k);
        }
        if (VEC_S) {
            // K % 4 == 0.
            let v = s[(col * p.k + min(k0, p.k - 4u)) >> 2u];
            return select(vec4<f32>(0.0), v, k0 < p.k);
        }
        return vec4<f32>(s_kc(k0, col), s_kc(k0 + 1u, col), s_kc(k0 + 2u, col),
                         s_kc(k0 + 3u, col));
    }
    let kr = kk + lane;
    if (IMPLICIT == 2u) {
        if (IN_C % 4u != 0u) {
            let cc = c0 + 4u * q;
            return vec4<f32>(im2col_s(kr, cc), im2col_s(kr, cc + 1u), im2col_s(kr, cc + 2u),
                             im2col_s(kr, cc + 3u));
        }
        // C % 4 == 0 (in_c % 4 == 0).
        let at = im2col_at(min(kr, p.k - 1u), min(c0 + 4u * q, p.c - 4u), window());
        return select(vec4<f32>(0.0), s[at.x >> 2u], at.y == 1u && kr < p.k);
    }
    let base = min(kr, p.k - 1u) * p.c;
    let cc = c0 + 4u * q;
    var v: vec4<f32>;
    if (VEC_S) {
        // C % 4 == 0.
        v = s[(base + min(cc, p.c - 4u)) >> 2u];
    } else {
        v = vec4<f32>(s_at(base + min(cc, last)), s_at(base + min(cc + 1u, last)),
                      s_at(base + min(cc + 2u, last)), s_at(base + min(cc + 3u, last)));
    }
    return select(vec4<f32>(0.0), v, kr < p.k);
}

// One slot (4 columns) of the K×C layout over 8 k: row values x (row 0)
// and y (row 1) times the broadcast S rows, k = kk + j at lane j, with
// explicit FMAs (the driver does not contract a*b+c). Returns the slot's
// (row 0, row 1) accumulators.
fn slot_kn(q0: vec4<f32>, q1: vec4<f32>, v: vec4<f32>, x0: vec4<f32>, x1: vec4<f32>,
           y0: vec4<f32>, y1: vec4<f32>) -> mat2x4<f32> {
    var r0 = q0;
    var r1 = q1;
    // subgroupBroadcast needs a constant lane: unrolled by hand.
    var t = subgroupBroadcast(v, 0u);
    r0 = fma(vec4<f32>(x0.x), t, r0);
    r1 = fma(vec4<f32>(y0.x), t, r1);
    t = subgroupBroadcast(v, 1u);
    r0 = fma(vec4<f32>(x0.y), t, r0);
    r1 = fma(vec4<f32>(y0.y), t, r1);
    t = subgroupBroadcast(v, 2u);
    r0 = fma(vec4<f32>(x0.z), t, r0);
    r1 = fma(vec4<f32>(y0.z), t, r1);
    t = subgroupBroadcast(v, 3u);
    r0 = fma(vec4<f32>(x0.w), t, r0);
    r1 = fma(vec4<f32>(y0.w), t, r1);
    t = subgroupBroadcast(v, 4u);
    r0 = fma(vec4<f32>(x1.x), t, r0);
    r1 = fma(vec4<f32>(y1.x), t, r1);
    t = subgroupBroadcast(v, 5u);
    r0 = fma(vec4<f32>(x1.y), t, r0);
    r1 = fma(vec4<f32>(y1.y), t, r1);
    t = subgroupBroadcast(v, 6u);
    r0 = fma(vec4<f32>(x1.z), t, r0);
    r1 = fma(vec4<f32>(y1.z), t, r1);
    t = subgroupBroadcast(v, 7u);
    r0 = fma(vec4<f32>(x1.w), t, r0);
    r1 = fma(vec4<f32>(y1.w), t, r1);
    return mat2x4<f32>(r0, r1);
}

// Σ over 8 k of (x0, x1)·(lo, hi) onto acc.
fn dot8(acc: f32, x0: vec4<f32>, x1: vec4<f32>, lo: vec4<f32>, hi: vec4<f32>) -> f32 {
    var t = fma(x0.x, lo.x, acc);
    t = fma(x0.y, lo.y, t);
    t = fma(x0.z, lo.z, t);
    t = fma(x0.w, lo.w, t);
    t = fma(x1.x, hi.x, t);
    t = fma(x1.y, hi.y, t);
    t = fma(x1.z, hi.z, t);
    return fma(x1.w, hi.w, t);
}

// C×K layout, one 4-column quad (slot value v): column t of the quad is at
// lanes 2t (k 0..3) and 2t+1 (k 4..7). Returns the quad's (row 0, row 1)
// accumulators.
fn quad_kc(q0: vec4<f32>, q1: vec4<f32>, v: vec4<f32>, x0: vec4<f32>, x1: vec4<f32>,
           y0: vec4<f32>, y1: vec4<f32>) -> mat2x4<f32> {
    var r0 = q0;
    var r1 = q1;
    // subgroupBroadcast needs a constant lane: unrolled by hand.
    var lo = subgroupBroadcast(v, 0u);
    var hi = subgroupBroadcast(v, 1u);
    r0.x = dot8(r0.x, x0, x1, lo, hi);
    r1.x = dot8(r1.x, y0, y1, lo, hi);
    lo = subgroupBroadcast(v, 2u);
    hi = subgroupBroadcast(v, 3u);
    r0.y = dot8(r0.y, x0, x1, lo, hi);
    r1.y = dot8(r1.y, y0, y1, lo, hi);
    lo = subgroupBroadcast(v, 4u);
    hi = subgroupBroadcast(v, 5u);
    r0.z = dot8(r0.z, x0, x1, lo, hi);
    r1.z = dot8(r1.z, y0, y1, lo, hi);
    lo = subgroupBroadcast(v, 6u);
    hi = subgroupBroadcast(v, 7u);
    r0.w = dot8(r0.w, x0, x1, lo, hi);
    r1.w = dot8(r1.w, y0, y1, lo, hi);
    return mat2x4<f32>(r0, r1);
}

// Slot q of this lane: loads its S values and adds its 8 k to (a, b).
fn slot(a: ptr<function, vec4<f32>>, b: ptr<function, vec4<f32>>, kk: u32, c0: u32, lane: u32,
        q: u32, x0: vec4<f32>, x1: vec4<f32>, y0: vec4<f32>, y1: vec4<f32>) {
    let v = load_s(kk, c0, lane, q);
    var m: mat2x4<f32>;
    if (S_KCONTIG) {
        m = quad_kc(*a, *b, v, x0, x1, y0, y1);
    } else {
        m = slot_kn(*a, *b, v, x0, x1, y0, y1);
    }
    *a = m[0];
    *b = m[1];
}

@compute @workgroup_size(WG)
fn gemm_subgroup(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(subgroup_invocation_id) lane: u32) {
    // The block index comes from lane 0 so that it is uniform across the
    // subgroup whatever the hardware's lane order: every lane must reach
    // every broadcast.
    let bc = 4u * SLOTS;
    let nb = (p.c + bc - 1u) / bc;
    let mb = (p.r + 15u) / 16u;
    let flat = subgroupBroadcast((flat_index(gid, nwg, WG)) / 8u, 0u);
    // Subgroups past the last block redo it and store nothing: no early
    // return, since any divergent control flow makes this driver mask every
    // later memory access.
    let spare = flat >= nb * mb;
    let blk = min(flat, nb * mb - 1u);
    let row0 = (blk / nb) * 16u + 2u * lane;
    let c0 = (blk % nb) * bc;
    // Rows past R are clamped (never stored).
    let ra = min(row0, p.r - 1u);
    let rb = min(row0 + 1u, p.r - 1u);

    // Named accumulators, not an array (dynamically indexed local arrays go
    // to memory in this driver); slots past SLOTS are constant-folded away.
    var a0 = vec4<f32>();
    var a1 = vec4<f32>();
    var a2 = vec4<f32>();
    var a3 = vec4<f32>();
    var a4 = vec4<f32>();
    var a5 = vec4<f32>();
    var a6 = vec4<f32>();
    var a7 = vec4<f32>();
    var b0 = vec4<f32>();
    var b1 = vec4<f32>();
    var b2 = vec4<f32>();
    var b3 = vec4<f32>();
    var b4 = vec4<f32>();
    var b5 = vec4<f32>();
    var b6 = vec4<f32>();
    var b7 = vec4<f32>();
    // DB's partial sums of the two owned rows.
    var sa = vec4<f32>();
    var sb = vec4<f32>();
    for (var kk = 0u; kk < p.k; kk += 8u) {
        let x0 = load_o(ra, kk);
        let x1 = load_o(ra, kk + 4u);
        let y0 = load_o(rb, kk);
        let y1 = load_o(rb, kk + 4u);
        if (DB) {
            sa += x0 + x1;
            sb += y0 + y1;
        }
        slot(&a0, &b0, kk, c0, lane, 0u, x0, x1, y0, y1);
        if (SLOTS > 1u) {
            slot(&a1, &b1, kk, c0, lane, 1u, x0, x1, y0, y1);
        }
        if (SLOTS > 2u) {
            slot(&a2, &b2, kk, c0, lane, 2u, x0, x1, y0, y1);
        }
        if (SLOTS > 3u) {
            slot(&a3, &b3, kk, c0, lane, 3u, x0, x1, y0, y1);
        }
        if (SLOTS > 4u) {
            slot(&a4, &b4, kk, c0, lane, 4u, x0, x1, y0, y1);
        }
        if (SLOTS > 5u) {
            slot(&a5, &b5, kk, c0, lane, 5u, x0, x1, y0, y1);
        }
        if (SLOTS > 6u) {
            slot(&a6, &b6, kk, c0, lane, 6u, x0, x1, y0, y1);
        }
        if (SLOTS > 7u) {
            slot(&a7, &b7, kk, c0, lane, 7u, x0, x1, y0, y1);
        }
    }
    if (spare) {
        return;
    }
    // The bias, loaded once a lane instead of at every store (lavapipe:
    // 0.57 ms of a 32768×32×8 product's 1.6): with OUT_T one per owned row,
    // else by column, slot q's four at lane q, handed round at the stores.
    var bias_cols = vec4<f32>(0.0);
    var bias_ra = 0.0;
    var bias_rb = 0.0;
    if (BIAS) {
        if (OUT_T) {
            bias_ra = bias[ra];
            bias_rb = bias[rb];
        } else {
            let col = c0 + 4u * lane;
            let last = p.c - 1u;
            bias_cols = vec4<f32>(bias[min(col, last)], bias[min(col + 1u, last)],
                                  bias[min(col + 2u, last)], bias[min(col + 3u, last)]);
        }
    }
    let bias_rows = vec2<f32>(bias_ra, bias_rb);
    store_pair(row0, c0, 0u, a0, b0, subgroupBroadcast(bias_cols, 0u), bias_rows);
    store_pair(row0, c0, 1u, a1, b1, subgroupBroadcast(bias_cols, 1u), bias_rows);
    store_pair(row0, c0, 2u, a2, b2, subgroupBroadcast(bias_cols, 2u), bias_rows);
    store_pair(row0, c0, 3u, a3, b3, subgroupBroadcast(bias_cols, 3u), bias_rows);
    store_pair(row0, c0, 4u, a4, b4, subgroupBroadcast(bias_cols, 4u), bias_rows);
    store_pair(row0, c0, 5u, a5, b5, subgroupBroadcast(bias_cols, 5u), bias_rows);
    store_pair(row0, c0, 6u, a6, b6, subgroupBroadcast(bias_cols, 6u), bias_rows);
    store_pair(row0, c0, 7u, a7, b7, subgroupBroadcast(bias_cols, 7u), bias_rows);
    if (DB) {
        // Each row's sum is stored once: by the first column of blocks.
        if (blk % nb == 0u && row0 < p.r) {
            store1(p.db_off + row0, hsum(sa));
        }
        if (blk % nb == 0u && row0 + 1u < p.r) {
            store1(p.db_off + row0 + 1u, hsum(sb));
        }
    }
}

fn hsum(v: vec4<f32>) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}

fn store1(e: u32, v: f32) {
    c[e >> 2u][e & 3u] = v;
}

// Element e of C as stored with its bias `b` (a gradient epilogue reads
// the forward activation at e instead): see shaders/prelude/epilogue.wgsl.
fn finish(v: f32, b: f32, e: u32) -> f32 {
    if (EPILOGUE >= 3u) {
        return apply_grad_epilogue(v, bias[e], EPILOGUE, p.slope);
    }
    var x = v;
    if (BIAS) {
        x += b;
    }
    return apply_epilogue(x, EPILOGUE, p.slope);
}

fn finish4(v: vec4<f32>, b: vec4<f32>, e: u32) -> vec4<f32> {
    if (EPILOGUE >= 3u) {
        let a = vec4<f32>(bias[e], bias[e + 1u], bias[e + 2u], bias[e + 3u]);
        return apply_grad_epilogue4(v, a, EPILOGUE, p.slope);
    }
    var x = v;
    if (BIAS) {
        x += b;
    }
    return apply_epilogue4(x, EPILOGUE, p.slope);
}

// Slot q of rows `row` and `row + 1` (columns c0 + 4q ..+3), inside R×C;
// `bq` is the slot's bias by column, `br` the two rows' (OUT_T).
fn store_pair(row: u32, c0: u32, q: u32, v: vec4<f32>, w: vec4<f32>, bq: vec4<f32>,
              br: vec2<f32>) {
    if (q >= SLOTS) {
        return;
    }
    if (row < p.r) {
        store4(row, c0 + 4u * q, v, bq, br.x);
    }
    if (row + 1u < p.r) {
        store4(row + 1u, c0 + 4u * q, w, bq, br.y);
    }
}

fn store4(row: u32, c0: u32, v: vec4<f32>, bcols: vec4<f32>, brow: f32) {
    if (c0 >= p.c) {
        return;
    }

    if (VEC_C) {
        // C % 4 == 0: the four columns are in range and 16-byte aligned.
        let o4 = (out_row(row) * p.c + c0) >> 2u;
        if (ACCUMULATE) {
            c[o4] += v;
        } else {
            c[o4] = finish4(v, bcols, o4 << 2u);
        }
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        let col = c0 + j;
        if (col >= p.c) {
            break;
        }
        var e: u32;
        var b: f32;
        if (OUT_T) {
            e = col * p.r + row;
            b = brow;
        } else {
            e = out_row(row) * p.c + col;
            b = bcols[j];
        }
        if (ACCUMULATE) {
            c[e >> 2u][e & 3u] += v[j];
        } else {
            c[e >> 2u][e & 3u] = finish(v[j], b, e);
        }
    }
}
