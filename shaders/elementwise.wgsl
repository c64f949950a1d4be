// Activations, forward and backward. The function is chosen by the override
// constant KIND (one pipeline per kind): the switch below folds away when the
// pipeline is compiled, so no element branches on the kind. Must match
// kernels::elementwise::cpu formula for formula (same approximations, same
// order of operations), so GPU and CPU differ only by the rounding of exp.
//
// KIND: 0 LeakyReLU (ReLU is slope 0), 1 sigmoid, 2 tanh, 3 ELU, 4 GELU.

struct Params {
    n: u32,
    // LeakyReLU's slope or ELU's alpha.
    a: f32,
    _pad0: u32,
    _pad1: u32,
}

override WG: u32 = 256u;
override KIND: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// Forward writes y at binding 2; backward reads dy there and writes dx at
// binding 3. WGSL allows two variables on one binding as long as no entry
// point uses both.
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

const SQRT1_2: f32 = 0.70710678118654752;
const INV_SQRT_2PI: f32 = 0.39894228040143268;

// erfc(z) with fractional error < 1.2e-7 everywhere: Press et al.,
// Numerical Recipes in C, 2nd ed. (1992), §6.2, `erfcc` (a Chebyshev fit).
// Relative accuracy in the tail keeps GELU accurate for negative x, where
// 1 + erf(x/√2) would cancel.
fn erfc(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * abs(z));
    let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
        + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
        + t * (-0.82215223 + t * 0.17087277))))))));
    let r = t * exp(-z * z + poly);
    return select(2.0 - r, r, z >= 0.0);
}

// tanh after Cephes' tanhf (S. Moshier): an odd polynomial below 0.625,
// where 1 − e would cancel; above it 1 − 2e/(1 + e) with e = exp(−2|x|) ≤ 1,
// which cannot overflow.
fn tanh_poly(v: f32) -> f32 {
    let z = v * v;
    return ((((-5.70498872745e-3 * z + 2.06390887954e-2) * z - 5.37397155531e-2) * z
        + 1.33314422036e-1) * z - 3.33332819422e-1) * z * v + v;
}

fn act(v: f32) -> f32 {
    switch KIND {
        case 0u: {
            return select(v * p.a, v, v > 0.0);
        }
        case 1u: {
            // exp of −|x| only: no overflow for large |x|.
            let e = exp(-abs(v));
            return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
        }
        case 2u: {
            let e = exp(-2.0 * abs(v));
            let t = 1.0 - 2.0 * e / (1.0 + e);
            return select(tanh_poly(v), sign(v) * t, abs(v) >= 0.625);
        }
        case 3u: {
            return select(p.a * (exp(v) - 1.0), v, v > 0.0);
        }
        default: {
            return 0.5 * v * erfc(-v * SQRT1_2);
        }
    }
}

// d act / dx at v, times g.
fn act_grad(v: f32, g: f32) -> f32 {
    switch KIND {
        case 0u: {
            return select(g * p.a, g, v > 0.0);
        }
        case 1u: {
            // σ(1 − σ) = e/(1 + e)² with e = exp(−|x|): no cancellation.
            let e = exp(-abs(v));
            let d = 1.0 + e;
            return g * (e / (d * d));
        }
        case 2u: {
            // 1 − t² = 4e/(1 + e)² above 0.625, where 1 − t² would cancel.
            let e = exp(-2.0 * abs(v));
            let d = 1.0 + e;
            let t = tanh_poly(v);
            return g * select(1.0 - t * t, 4.0 * e / (d * d), abs(v) >= 0.625);
        }
        case 3u: {
            return select(g * (p.a * exp(v)), g, v > 0.0);
        }
        default: {
            // Φ(x) + x·φ(x).
            let cdf = 0.5 * erfc(-v * SQRT1_2);
            let pdf = INV_SQRT_2PI * exp(-0.5 * v * v);
            return g * (cdf + v * pdf);
        }
    }
}

@compute @workgroup_size(WG)
fn act_forward(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    y[i] = act(x[i]);
}

// x is the forward input (for LeakyReLU the executor may pass the output,
// which has the same sign).
@compute @workgroup_size(WG)
fn act_backward(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    dx[i] = act_grad(x[i], dy[i]);
}
