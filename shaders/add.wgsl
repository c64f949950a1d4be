// Elementwise sums: c = a + b (a residual Add layer), and acc += src (the
// gradient of a tensor read by several layers is the sum of theirs). Each
// has a vec4 twin for n % 4 == 0; the wrapper sets p.n to the invocations.

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c4: array<vec4<f32>>;
// accumulate's layout: src at binding 1, acc at binding 2.
@group(0) @binding(2) var<storage, read_write> acc: array<f32>;
@group(0) @binding(2) var<storage, read_write> acc4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn add(@builtin(global_invocation_id) gid: vec3<u32>,
       @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    c[i] = a[i] + b[i];
}

@compute @workgroup_size(WG)
fn add_vec4(@builtin(global_invocation_id) gid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    c4[i] = a4[i] + b4[i];
}

@compute @workgroup_size(WG)
fn accumulate(@builtin(global_invocation_id) gid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    acc[i] = acc[i] + a[i];
}

@compute @workgroup_size(WG)
fn accumulate_vec4(@builtin(global_invocation_id) gid: vec3<u32>,
                   @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    acc4[i] = acc4[i] + a4[i];
}
