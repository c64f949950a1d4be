// Pre-pass of the subgroup GEMM: repacks an operand X (R×K, element (r, k))
// as P[r·ldp + k] with K contiguous and zeros in k ∈ [K, ldp), ldp a
// multiple of 8, so that the GEMM can load its rows as vec4s. X is stored
// R×K (K not a multiple of 4) or, with TRANS, K×R.

struct Params {
    r: u32,
    k: u32,
    ldp: u32,
    _pad: u32,
}

override TRANS: bool = false;
// TRANS and R % 4 == 0: each invocation moves a 4×4 tile with vec4 loads
// and stores (8 memory operations per 16 values instead of 20).
override VEC: bool = false;
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

fn x_at(i: u32) -> f32 {
    return x[i >> 2u][i & 3u];
}

// X(r, k), zero past K (r < R).
fn x_elem(r: u32, k: u32) -> f32 {
    let kc = min(k, p.k - 1u);
    var v: f32;
    if (TRANS) {
        v = x_at(kc * p.r + r);
    } else {
        v = x_at(r * p.k + kc);
    }
    return select(0.0, v, k < p.k);
}

// Stored row k of X (K×R) at r..r+3, zero past K (R % 4 == 0).
fn x_row4(k: u32, r: u32) -> vec4<f32> {
    let v = x[(min(k, p.k - 1u) * p.r + r) >> 2u];
    return select(vec4<f32>(0.0), v, k < p.k);
}

@compute @workgroup_size(WG)
fn gemm_pack(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, WG);
    let kq = p.ldp / 4u;
    if (VEC) {
        // Tile (rows r..r+3, k k..k+3).
        if (idx >= (p.r / 4u) * kq) {
            return;
        }
        let r = (idx / kq) * 4u;
        let k = (idx % kq) * 4u;
        let t = transpose(mat4x4<f32>(x_row4(k, r), x_row4(k + 1u, r), x_row4(k + 2u, r),
                                      x_row4(k + 3u, r)));
        let o = (r * p.ldp + k) >> 2u;
        out[o] = t[0];
        out[o + kq] = t[1];
        out[o + 2u * kq] = t[2];
        out[o + 3u * kq] = t[3];
        return;
    }
    if (idx >= p.r * kq) {
        return;
    }
    let r = idx / kq;
    let k = (idx % kq) * 4u;
    out[idx] = vec4<f32>(x_elem(r, k), x_elem(r, k + 1u), x_elem(r, k + 2u), x_elem(r, k + 3u));
}
