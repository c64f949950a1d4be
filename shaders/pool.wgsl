// 2-D max and average pooling over NHWC, TensorFlow semantics, forward and
// backward. Every entry point writes each element of its output once (one
// invocation per element), so backward is a gather: no atomics, a fixed
// summation order, and dx fully overwritten.
//
// Max: padding taps are never chosen; ties go to the first maximum in
// window scan order (ky, then kx). Backward recomputes each window's argmax
// from x instead of storing indices. Average: the divisor counts only
// in-image taps (TF's avg_pool with "same" padding).

// The geometry, baked into the pipeline like conv's: the index arithmetic
// is divisions by constants.
override IN_H: u32;
override IN_W: u32;
override C: u32;
override OUT_H: u32;
override OUT_W: u32;
override KH: u32;
override KW: u32;
override STRIDE_H: u32;
override STRIDE_W: u32;
override PAD_TOP: u32;
override PAD_LEFT: u32;
override WG: u32 = 64u;

struct Params {
    // Work items: elements of the output of this dispatch.
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
// max_forward / avg_forward / avg_backward write binding 2; max_backward
// reads dy there and writes dx at binding 3.
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

// The in-image part of window (oy, ox): rows [y0, y1), columns [x0, x1).
struct Window {
    y0: u32,
    y1: u32,
    x0: u32,
    x1: u32,
}

fn window(oy: u32, ox: u32) -> Window {
    let ty = i32(oy * STRIDE_H) - i32(PAD_TOP);
    let tx = i32(ox * STRIDE_W) - i32(PAD_LEFT);
    return Window(
        u32(max(ty, 0)),
        u32(min(ty + i32(KH), i32(IN_H))),
        u32(max(tx, 0)),
        u32(min(tx + i32(KW), i32(IN_W))),
    );
}

// Flat x index of (b, iy, ix, c).
fn x_at(b: u32, iy: u32, ix: u32, c: u32) -> u32 {
    return ((b * IN_H + iy) * IN_W + ix) * C + c;
}

// (b, oy, ox, c) of output element i.
fn out_coords(i: u32) -> vec4<u32> {
    let c = i % C;
    var t = i / C;
    // A "valid" window larger than the image has no output and no
    // invocations, but the pipeline must compile: non-zero divisors.
    let ox = t % max(OUT_W, 1u);
    t = t / max(OUT_W, 1u);
    let oy = t % max(OUT_H, 1u);
    return vec4<u32>(t / max(OUT_H, 1u), oy, ox, c);
}

// The flat x index of window (oy, ox)'s first maximum at channel c. Every
// window has an in-image tap ("same" pads less than a kernel).
fn argmax(b: u32, oy: u32, ox: u32, c: u32) -> u32 {
    let w = window(oy, ox);
    var best_i = x_at(b, w.y0, w.x0, c);
    var best = src[best_i];
    for (var iy = w.y0; iy < w.y1; iy++) {
        for (var ix = w.x0; ix < w.x1; ix++) {
            let i = x_at(b, iy, ix, c);
            let v = src[i];
            if (v > best) {
                best = v;
                best_i = i;
            }
        }
    }
    return best_i;
}

// Output windows that contain input row t (t = iy + PAD_TOP, in padded
// coordinates): oy with oy·s ≤ t < oy·s + k, clipped to the output.
fn first_window(t: u32, k: u32, s: u32) -> u32 {
    return select(0u, (t + 1u - k + s - 1u) / s, t + 1u > k);
}

@compute @workgroup_size(WG)
fn max_forward(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    let o = out_coords(i);
    dst[i] = src[argmax(o.x, o.y, o.z, o.w)];
}

@compute @workgroup_size(WG)
fn avg_forward(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    let o = out_coords(i);
    let w = window(o.y, o.z);
    var acc = 0.0;
    for (var iy = w.y0; iy < w.y1; iy++) {
        for (var ix = w.x0; ix < w.x1; ix++) {
            acc += src[x_at(o.x, iy, ix, o.w)];
        }
    }
    dst[i] = acc / f32((w.y1 - w.y0) * (w.x1 - w.x0));
}

// dx element i = (b, iy, ix, c) with its windows in (oy, ox) order.
struct Span {
    b: u32,
    iy: u32,
    ix: u32,
    c: u32,
    oy0: u32,
    oy1: u32,
    ox0: u32,
    ox1: u32,
}

fn span(i: u32) -> Span {
    let c = i % C;
    var t = i / C;
    let ix = t % IN_W;
    t = t / IN_W;
    let iy = t % IN_H;
    let ty = iy + PAD_TOP;
    let tx = ix + PAD_LEFT;
    return Span(
        t / IN_H, iy, ix, c,
        first_window(ty, KH, STRIDE_H), min(ty / STRIDE_H + 1u, OUT_H),
        first_window(tx, KW, STRIDE_W), min(tx / STRIDE_W + 1u, OUT_W),
    );
}

@compute @workgroup_size(WG)
fn max_backward(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    let s = span(i);
    var acc = 0.0;
    for (var oy = s.oy0; oy < s.oy1; oy++) {
        for (var ox = s.ox0; ox < s.ox1; ox++) {
            if (argmax(s.b, oy, ox, s.c) == i) {
                acc += dy[((s.b * OUT_H + oy) * OUT_W + ox) * C + s.c];
            }
        }
    }
    dx[i] = acc;
}

// src is dy here.
@compute @workgroup_size(WG)
fn avg_backward(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    let s = span(i);
    var acc = 0.0;
    for (var oy = s.oy0; oy < s.oy1; oy++) {
        for (var ox = s.ox0; ox < s.ox1; ox++) {
            let w = window(oy, ox);
            let count = f32((w.y1 - w.y0) * (w.x1 - w.x0));
            acc += src[((s.b * OUT_H + oy) * OUT_W + ox) * C + s.c] / count;
        }
    }
    dst[i] = acc;
}
