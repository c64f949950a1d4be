// im2col / col2im for NHWC convolution, so that Conv2D forward, input grad
// and weight grad become GEMMs. cols is [batch·out_h·out_w, kh·kw·in_c]
// row-major; a column index is (ky, kx, c) with c fastest, which matches the
// Keras weight layout [kh, kw, in_c, out_c] viewed as [kh·kw·in_c, out_c].
//
// Each entry point has a vec4 twin used when in_c % 4 == 0 (every layer of
// the CNN but the first): four channels are contiguous in x and in cols, so
// one load moves four values (loads dominate on lavapipe).

struct Params {
    batch: u32,
    in_h: u32,
    in_w: u32,
    in_c: u32,
    out_h: u32,
    out_w: u32,
    kh: u32,
    kw: u32,
    stride: u32,
    pad_top: u32,
    pad_left: u32,
    // Work items of this dispatch (elements, or vec4s for the vec4 twins).
    n: u32,
}

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
// The same bindings seen as vec4s, for the vec4 twins. WGSL allows two
// variables on one binding as long as no entry point uses both.
@group(0) @binding(1) var<storage, read> src4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst4: array<vec4<f32>>;

// Index into x for output pixel `row`, kernel tap (ky, kx) and channel c,
// or -1 where the tap falls into the zero padding.
fn x_index(row: u32, ky: u32, kx: u32, c: u32, channels: u32) -> i32 {
    let ox = row % p.out_w;
    let t = row / p.out_w;
    let oy = t % p.out_h;
    let b = t / p.out_h;
    let iy = i32(oy * p.stride + ky) - i32(p.pad_top);
    let ix = i32(ox * p.stride + kx) - i32(p.pad_left);
    if (iy < 0 || ix < 0 || iy >= i32(p.in_h) || ix >= i32(p.in_w)) {
        return -1;
    }
    return ((i32(b) * i32(p.in_h) + iy) * i32(p.in_w) + ix) * i32(channels) + i32(c);
}

@compute @workgroup_size(WG)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.n) {
        return;
    }
    let k = p.kh * p.kw * p.in_c;
    let col = i % k;
    let row = i / k;
    let c = col % p.in_c;
    let tap = col / p.in_c;
    let xi = x_index(row, tap / p.kw, tap % p.kw, c, p.in_c);
    var v = 0.0;
    if (xi >= 0) {
        v = src[xi];
    }
    dst[i] = v;
}

// Gather: each dx element sums the cols entries im2col copied it to. Output
// row oy reads input row iy = oy·s − pad_top + ky, so for a given iy only
// the ky with (iy + pad_top − ky) divisible by s contribute.
@compute @workgroup_size(WG)
fn col2im(@builtin(global_invocation_id) gid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.n) {
        return;
    }
    let c = i % p.in_c;
    var t = i / p.in_c;
    let ix = t % p.in_w;
    t = t / p.in_w;
    let iy = t % p.in_h;
    let b = t / p.in_h;
    let k = p.kh * p.kw * p.in_c;
    let ty = iy + p.pad_top;
    let tx = ix + p.pad_left;
    var acc = 0.0;
    for (var ky = ty % p.stride; ky < p.kh && ky <= ty; ky += p.stride) {
        let oy = (ty - ky) / p.stride;
        if (oy >= p.out_h) {
            continue;
        }
        for (var kx = tx % p.stride; kx < p.kw && kx <= tx; kx += p.stride) {
            let ox = (tx - kx) / p.stride;
            if (ox >= p.out_w) {
                continue;
            }
            let row = (b * p.out_h + oy) * p.out_w + ox;
            acc += src[row * k + (ky * p.kw + kx) * p.in_c + c];
        }
    }
    dst[i] = acc;
}

// As im2col, four channels per invocation (in_c % 4 == 0): indices in vec4s.
@compute @workgroup_size(WG)
fn im2col_vec4(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.n) {
        return;
    }
    let c4 = p.in_c / 4u;
    let k4 = p.kh * p.kw * c4;
    let col = i % k4;
    let row = i / k4;
    let c = col % c4;
    let tap = col / c4;
    let xi = x_index(row, tap / p.kw, tap % p.kw, c, c4);
    var v = vec4<f32>(0.0);
    if (xi >= 0) {
        v = src4[xi];
    }
    dst4[i] = v;
}

// As col2im, four channels per invocation (in_c % 4 == 0).
@compute @workgroup_size(WG)
fn col2im_vec4(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.n) {
        return;
    }
    let c4 = p.in_c / 4u;
    let c = i % c4;
    var t = i / c4;
    let ix = t % p.in_w;
    t = t / p.in_w;
    let iy = t % p.in_h;
    let b = t / p.in_h;
    let k4 = p.kh * p.kw * c4;
    let ty = iy + p.pad_top;
    let tx = ix + p.pad_left;
    var acc = vec4<f32>(0.0);
    for (var ky = ty % p.stride; ky < p.kh && ky <= ty; ky += p.stride) {
        let oy = (ty - ky) / p.stride;
        if (oy >= p.out_h) {
            continue;
        }
        for (var kx = tx % p.stride; kx < p.kw && kx <= tx; kx += p.stride) {
            let ox = (tx - kx) / p.stride;
            if (ox >= p.out_w) {
                continue;
            }
            let row = (b * p.out_h + oy) * p.out_w + ox;
            acc += src4[row * k4 + (ky * p.kw + kx) * c4 + c];
        }
    }
    dst4[i] = acc;
}
