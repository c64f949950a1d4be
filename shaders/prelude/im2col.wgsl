// Where im2col's entry (row, col) lives in the NHWC input: for conv.wgsl,
// which builds the im2col matrix, and for the kernels that read it without
// building it (implicit-GEMM convolution), so both share one definition.
// Row = output pixel (b, oy, ox); col = (ky, kx, c) with c fastest, the
// Keras kernel layout [kh, kw, in_c, out_c] viewed as [kh·kw·in_c, out_c].
// The caller builds `w` from its override constants, so after inlining every
// division here is by a constant.
struct ConvWindow {
    in_h: u32,
    in_w: u32,
    in_c: u32,
    out_h: u32,
    out_w: u32,
    kw: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
}

// (element index into x, 1 if in the image else 0). Outside the image the
// index is 0, so a load there stays in bounds and the caller selects zero.
fn im2col_at(row: u32, col: u32, w: ConvWindow) -> vec2<u32> {
    let ox = row % w.out_w;
    let t = row / w.out_w;
    let oy = t % w.out_h;
    let b = t / w.out_h;
    let c = col % w.in_c;
    let tap = col / w.in_c;
    let ky = tap / w.kw;
    let kx = tap % w.kw;
    // Unsigned wrap-around makes a position above or left of the image
    // larger than the image, so one comparison per axis checks both sides.
    let iy = oy * w.stride_h + ky - w.pad_top;
    let ix = ox * w.stride_w + kx - w.pad_left;
    let inside = iy < w.in_h && ix < w.in_w;
    let at = ((b * w.in_h + iy) * w.in_w + ix) * w.in_c + c;
    return vec2<u32>(select(0u, at, inside), u32(inside));
}

// The input gradient as GEMMs, one per stride phase (see `StridePhase` in
// src/kernels/conv.rs): the phase's input pixels (b, py + stride_h·yy,
// px + stride_w·xx) are T's rows and its taps (ky0 + stride_h·ty,
// kx0 + stride_w·tx) with the output channel o, o fastest, its columns; T
// holds the output gradient dy[b, oy, ox, o] of the output pixel whose window
// puts that tap on that input pixel, or zero where it falls outside the
// output. The phase's taps are the ones whose offset is a multiple of the
// strides, so no entry of T is a stride's zero. dy has `out_c` channels.
struct ConvPhase {
    py: u32,
    px: u32,
    rows: u32,
    cols: u32,
    ky0: u32,
    kx0: u32,
    taps_w: u32,
}

// The phase's input pixel `row` as (b, iy, ix).
fn phase_coords(row: u32, w: ConvWindow, ph: ConvPhase) -> vec3<u32> {
    let t = row / ph.cols;
    return vec3<u32>(t / ph.rows, ph.py + w.stride_h * (t % ph.rows),
                     ph.px + w.stride_w * (row % ph.cols));
}

// The phase's tap `tap` as (ky, kx).
fn phase_tap_yx(tap: u32, w: ConvWindow, ph: ConvPhase) -> vec2<u32> {
    return vec2<u32>(ph.ky0 + w.stride_h * (tap / ph.taps_w),
                     ph.kx0 + w.stride_w * (tap % ph.taps_w));
}

// The phase's input pixel `row` as a pixel of dx: (b·in_h + iy)·in_w + ix.
fn phase_pixel(row: u32, w: ConvWindow, ph: ConvPhase) -> u32 {
    let p = phase_coords(row, w, ph);
    return (p.x * w.in_h + p.y) * w.in_w + p.z;
}

// The kernel tap ky·kw + kx of the phase's tap `tap`.
fn phase_tap(tap: u32, w: ConvWindow, ph: ConvPhase) -> u32 {
    let k = phase_tap_yx(tap, w, ph);
    return k.x * w.kw + k.y;
}

// Returns (element index into dy, 1 if T's entry (row, col) is an output
// pixel's else 0).
fn col2im_at(row: u32, col: u32, w: ConvWindow, ph: ConvPhase, out_c: u32) -> vec2<u32> {
    let p = phase_coords(row, w, ph);
    let k = phase_tap_yx(col / out_c, w, ph);
    let o = col % out_c;
    // A multiple of the stride by the phase's choice of taps; above or left
    // of the output it wraps around to a huge value (as in im2col_at), whose
    // quotient then exceeds out_h or out_w.
    let oy = (p.y + w.pad_top - k.x) / w.stride_h;
    let ox = (p.z + w.pad_left - k.y) / w.stride_w;
    let hit = oy < w.out_h && ox < w.out_w;
    let at = ((p.x * w.out_h + oy) * w.out_w + ox) * out_c + o;
    return vec2<u32>(select(0u, at, hit), u32(hit));
}
