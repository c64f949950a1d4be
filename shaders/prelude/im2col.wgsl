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

// The input gradient as a GEMM, dx = T·Wᵀ per tap: T's row is an input pixel
// (b, iy, ix), its column (ky, kx, o) with o fastest, and T holds the output
// gradient dy[b, oy, ox, o] of the output pixel whose window puts tap
// (ky, kx) on (iy, ix), or zero where none does (strides skip it, or it
// falls outside the output). dy has `out_c` channels.
// Returns (element index into dy, 1 if such a pixel exists else 0).
fn col2im_at(row: u32, col: u32, w: ConvWindow, out_c: u32) -> vec2<u32> {
    let ix = row % w.in_w;
    let t = row / w.in_w;
    let iy = t % w.in_h;
    let b = t / w.in_h;
    let o = col % out_c;
    let tap = col / out_c;
    let ky = tap / w.kw;
    let kx = tap % w.kw;
    // Above or left of the output wraps around to a huge value (as in
    // im2col_at): the quotient then exceeds out_h or out_w.
    let ty = iy + w.pad_top - ky;
    let tx = ix + w.pad_left - kx;
    let oy = ty / w.stride_h;
    let ox = tx / w.stride_w;
    let hit = ty % w.stride_h == 0u && tx % w.stride_w == 0u && oy < w.out_h && ox < w.out_w;
    let at = ((b * w.out_h + oy) * w.out_w + ox) * out_c + o;
    return vec2<u32>(select(0u, at, hit), u32(hit));
}
