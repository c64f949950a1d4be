// im2col / col2im for NHWC convolution, so that Conv2D forward, input grad
// and weight grad become GEMMs. cols is [batch·out_h·out_w, kh·kw·in_c]
// row-major; a column index is (ky, kx, c) with c fastest, which matches the
// Keras weight layout [kh, kw, in_c, out_c] viewed as [kh·kw·in_c, out_c].
//
// Each entry point has a vec4 twin used when in_c % 4 == 0 (every layer of
// the CNN but the first): four channels are contiguous in x and in cols, so
// one load moves four values (loads dominate on lavapipe). The work item
// count `p.n` is set by the wrapper: see each entry point.

// The geometry is baked in as override constants (one pipeline per conv
// shape; a model has a handful): the index arithmetic is all divisions and
// remainders, which compilers turn into multiplies by constants. On lavapipe
// that makes im2col several times faster.
override IN_H: u32;
override IN_W: u32;
override IN_C: u32;
override OUT_H: u32;
override OUT_W: u32;
override KH: u32;
override KW: u32;
override STRIDE_H: u32;
override STRIDE_W: u32;
override PAD_TOP: u32;
override PAD_LEFT: u32;

struct Params {
    // Work items of this dispatch (elements, or vec4s for the vec4 twins).
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
// The same bindings seen as vec4s, for the vec4 twins. WGSL allows two
// variables on one binding as long as no entry point uses both.
@group(0) @binding(1) var<storage, read> src4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst4: array<vec4<f32>>;

// The window for shaders/prelude/im2col.wgsl, with `channels` per pixel (in
// f32s or in vec4s). A "valid" conv with the kernel larger than the image
// has no output (and im2col no invocations), but the pipeline must still
// compile: the constant divisors stay non-zero.
fn window(channels: u32) -> ConvWindow {
    return ConvWindow(IN_H, IN_W, channels, max(OUT_H, 1u), max(OUT_W, 1u), KW, STRIDE_H,
                      STRIDE_W, PAD_TOP, PAD_LEFT);
}

// One invocation per (output pixel, kernel row): KW·IN_C consecutive cols
// entries. Few channels (the first layer's 3) make per-element invocations
// mostly index arithmetic; this spreads it over a whole kernel row.
@compute @workgroup_size(WG)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    let ky = i % KH;
    let row = i / KH;
    let out = row * (KH * KW * IN_C) + ky * (KW * IN_C);
    for (var kx = 0u; kx < KW; kx++) {
        // Channel 0 of the tap; the others follow it in x as in cols.
        let at = im2col_at(row, (ky * KW + kx) * IN_C, window(IN_C));
        for (var c = 0u; c < IN_C; c++) {
            var v = 0.0;
            if (at.y == 1u) {
                v = src[at.x + c];
            }
            dst[out + kx * IN_C + c] = v;
        }
    }
}

// Gather: each dx element sums the cols entries im2col copied it to. Output
// row oy reads input row iy = oy·stride_h − pad_top + ky, so for a given iy
// only the ky with (iy + pad_top − ky) divisible by stride_h contribute
// (and likewise along x with stride_w).
@compute @workgroup_size(WG)
fn col2im(@builtin(global_invocation_id) gid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    let c = i % IN_C;
    var t = i / IN_C;
    let ix = t % IN_W;
    t = t / IN_W;
    let iy = t % IN_H;
    let b = t / IN_H;
    let k = KH * KW * IN_C;
    let ty = iy + PAD_TOP;
    let tx = ix + PAD_LEFT;
    var acc = 0.0;
    for (var ky = ty % STRIDE_H; ky < KH && ky <= ty; ky += STRIDE_H) {
        let oy = (ty - ky) / STRIDE_H;
        if (oy >= OUT_H) {
            continue;
        }
        for (var kx = tx % STRIDE_W; kx < KW && kx <= tx; kx += STRIDE_W) {
            let ox = (tx - kx) / STRIDE_W;
            if (ox >= OUT_W) {
                continue;
            }
            let row = (b * OUT_H + oy) * OUT_W + ox;
            acc += src[row * k + (ky * KW + kx) * IN_C + c];
        }
    }
    dst[i] = acc;
}

// As im2col, four channels per invocation (in_c % 4 == 0): indices in vec4s.
@compute @workgroup_size(WG)
fn im2col_vec4(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    let c4 = IN_C / 4u;
    let k4 = KH * KW * c4;
    let col = i % k4;
    let row = i / k4;
    let at = im2col_at(row, col, window(c4));
    var v = vec4<f32>(0.0);
    if (at.y == 1u) {
        v = src4[at.x];
    }
    dst4[i] = v;
}

// As col2im, four channels per invocation (in_c % 4 == 0).
@compute @workgroup_size(WG)
fn col2im_vec4(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    let c4 = IN_C / 4u;
    let c = i % c4;
    var t = i / c4;
    let ix = t % IN_W;
    t = t / IN_W;
    let iy = t % IN_H;
    let b = t / IN_H;
    let k4 = KH * KW * c4;
    let ty = iy + PAD_TOP;
    let tx = ix + PAD_LEFT;
    var acc = vec4<f32>(0.0);
    for (var ky = ty % STRIDE_H; ky < KH && ky <= ty; ky += STRIDE_H) {
        let oy = (ty - ky) / STRIDE_H;
        if (oy >= OUT_H) {
            continue;
        }
        for (var kx = tx % STRIDE_W; kx < KW && kx <= tx; kx += STRIDE_W) {
            let ox = (tx - kx) / STRIDE_W;
            if (ox >= OUT_W) {
                continue;
            }
            let row = (b * OUT_H + oy) * OUT_W + ox;
            acc += src4[row * k4 + (ky * KW + kx) * c4 + c];
        }
    }
    dst4[i] = acc;
}
