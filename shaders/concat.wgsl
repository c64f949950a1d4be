// Copies a rows × width block between row-major matrices with their own
// row strides and column offsets: concatenation along NHWC's channel axis
// (the matrices are pixels × channels) copies each input into its column
// range of the output, and its backward copies each range out of dy. The
// vec4 twin serves blocks whose width, strides and offsets are multiples of
// 4 (then in vec4 units).

struct Params {
    // Invocations: rows·width (in vec4s for the twin).
    n: u32,
    width: u32,
    src_stride: u32,
    src_offset: u32,
    dst_stride: u32,
    dst_offset: u32,
    _pad0: u32,
    _pad1: u32,
}

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(1) var<storage, read> src4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn copy_columns(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    let r = i / p.width;
    let col = i % p.width;
    dst[r * p.dst_stride + p.dst_offset + col] = src[r * p.src_stride + p.src_offset + col];
}

@compute @workgroup_size(WG)
fn copy_columns_vec4(@builtin(global_invocation_id) gid: vec3<u32>,
                     @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    let r = i / p.width;
    let col = i % p.width;
    dst4[r * p.dst_stride + p.dst_offset + col] = src4[r * p.src_stride + p.src_offset + col];
}
