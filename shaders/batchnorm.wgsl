// Batch normalization (Keras) over x viewed as [rows, channels] row-major.
//
// Statistics are reduced in two levels so no invocation walks all rows:
// `*_partial` gives each (chunk of chunk_rows rows, channel) one invocation,
// `*_combine` gives each channel one invocation that folds the chunks.
// The mean and variance use Welford within a chunk and Chan et al.'s
// pairwise update across chunks, on values shifted by the channel's value in
// row 0 (K): with d = x − K the sums stay of the order of the channel's
// spread, so a large common offset (mean 1000, std 1) costs no accuracy.
//
// Row passes (partials, normalize, input grad) have vec4 twins used when
// channels % 4 == 0: a lane is then four adjacent channels and one load
// moves four values. `p.lanes` is channels or channels / 4 accordingly. The
// per-channel combine passes are scalar; the partials buffer has the same
// layout either way: [2][nchunks][channels] (first means or Σdy, then M2 or
// Σdy·(x − μ)).
//
// The output may go on through an activation and an inverted dropout in
// the same pass (kernels::batchnorm::BnPost): the override constants ACT
// (shaders/prelude/activation.wgsl's code; 5 is the identity) and DROPOUT
// choose them, so an unfused layer compiles to the plain normalization.
// Backward recomputes the normalized value from x and the saved statistics,
// regenerates the dropout mask and goes back through the activation before
// the BatchNorm gradient, which sees dz = ∂loss/∂(BN output).
//
// Several variables share a binding number below: WGSL allows that as long
// as no entry point uses two of them. Each entry point's bindings are listed
// above it and match its KernelSpec in src/kernels/batchnorm.rs.

struct Params {
    rows: u32,
    channels: u32,
    lanes: u32,
    chunk_rows: u32,
    nchunks: u32,
    // Invocations of this dispatch.
    n: u32,
    momentum: f32,
    eps: f32,
    // The activation's slope (LeakyReLU) or alpha (ELU).
    act_a: f32,
    // Dropout's round(rate·2³²), 1/(1 − rate) and stream.
    drop_threshold: u32,
    drop_scale: f32,
    drop_stream: u32,
}

override WG: u32 = 64u;
override ACT: u32 = 5u;
override DROPOUT: bool = false;

@group(0) @binding(0) var<uniform> p: Params;

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> x_v: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> part_in1: array<f32>;

@group(0) @binding(2) var<storage, read_write> part_out: array<f32>;
@group(0) @binding(2) var<storage, read_write> part_out_v: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> part_in2: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> gamma_v: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> dy_v: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> inv_std2: array<f32>;

@group(0) @binding(3) var<storage, read_write> moving_mean_rw: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read> beta_v: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> mean3: array<f32>;
@group(0) @binding(3) var<storage, read> mean3_v: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dgamma_rw: array<f32>;
@group(0) @binding(3) var<storage, read> coef3: array<f32>;
@group(0) @binding(3) var<storage, read> coef3_v: array<vec4<f32>>;

@group(0) @binding(4) var<storage, read_write> moving_var_rw: array<f32>;
@group(0) @binding(4) var<storage, read> mean4: array<f32>;
@group(0) @binding(4) var<storage, read> mean4_v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> part_out_g: array<f32>;
@group(0) @binding(4) var<storage, read_write> part_out_g_v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> dbeta_rw: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx4: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx4_v: array<vec4<f32>>;

@group(0) @binding(5) var<storage, read_write> save_mean_rw: array<f32>;
@group(0) @binding(5) var<storage, read> gamma5: array<f32>;
@group(0) @binding(5) var<uniform> step5: Step;
@group(0) @binding(5) var<storage, read> scale5: array<f32>;
@group(0) @binding(5) var<storage, read> scale5_v: array<vec4<f32>>;

@group(0) @binding(6) var<storage, read_write> save_inv_std_rw: array<f32>;
@group(0) @binding(6) var<storage, read_write> out6: array<f32>;
@group(0) @binding(6) var<storage, read_write> out6_v: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> beta6: array<f32>;
@group(0) @binding(6) var<storage, read> gamma6: array<f32>;
@group(0) @binding(6) var<storage, read> gamma6_v: array<vec4<f32>>;

@group(0) @binding(7) var<uniform> step7: Step;
@group(0) @binding(7) var<storage, read> mean7: array<f32>;
@group(0) @binding(7) var<storage, read> beta7: array<f32>;
@group(0) @binding(7) var<storage, read> beta7_v: array<vec4<f32>>;

@group(0) @binding(8) var<storage, read_write> coef8: array<f32>;
@group(0) @binding(8) var<uniform> step8: Step;

// Planes of the per-channel coefficients grad_combine writes for
// grad_input (`channels` floats each): μ, inv_std, γ·inv_std, β,
// γ·inv_std/rows, dγ, dβ.
const COEF_MEAN: u32 = 0u;
const COEF_INV_STD: u32 = 1u;
const COEF_SCALE: u32 = 2u;
const COEF_BETA: u32 = 3u;
const COEF_K: u32 = 4u;
const COEF_DGAMMA: u32 = 5u;
const COEF_DBETA: u32 = 6u;

// Rows handled by one invocation of the elementwise row passes: the
// per-channel parameters are loaded once per ROWS rows.
const ROWS: u32 = 8u;

fn chunk_end(chunk: u32) -> u32 {
    return min(p.rows, (chunk + 1u) * p.chunk_rows);
}

// What follows the normalization, at element i (z its normalized value).
fn post(z: f32, i: u32, st: Step) -> f32 {
    let a = act_apply(ACT, p.act_a, z);
    if (DROPOUT) {
        return dropout_apply_one(a, vec2<u32>(st.seed, st.seed_hi), st.step, p.drop_stream, i, p.drop_threshold,
                                 p.drop_scale);
    }
    return a;
}

// Four adjacent elements from i0.
fn post4(z: vec4<f32>, i0: u32, st: Step) -> vec4<f32> {
    return vec4<f32>(post(z.x, i0, st), post(z.y, i0 + 1u, st), post(z.z, i0 + 2u, st),
                     post(z.w, i0 + 3u, st));
}

// The gradient at the normalized value z, given the gradient g of post's output.
fn post_grad(z: f32, g: f32, i: u32, st: Step) -> f32 {
    var d = g;
    if (DROPOUT) {
        d = dropout_apply_one(g, vec2<u32>(st.seed, st.seed_hi), st.step, p.drop_stream, i, p.drop_threshold,
                              p.drop_scale);
    }
    return act_grad(ACT, p.act_a, z, d);
}

fn post_grad4(z: vec4<f32>, g: vec4<f32>, i0: u32, st: Step) -> vec4<f32> {
    return vec4<f32>(post_grad(z.x, g.x, i0, st), post_grad(z.y, g.y, i0 + 1u, st),
                     post_grad(z.z, g.z, i0 + 2u, st), post_grad(z.w, g.w, i0 + 3u, st));
}

// ---- forward statistics -------------------------------------------------
// stats_partial: 0 p, 1 x, 2 part_out
@compute @workgroup_size(WG)
fn stats_partial(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    let lane = i % p.lanes;
    let chunk = i / p.lanes;
    let shift = x[lane];
    var mean = 0.0;
    var m2 = 0.0;
    var count = 0.0;
    for (var r = chunk * p.chunk_rows; r < chunk_end(chunk); r++) {
        let d = x[r * p.lanes + lane] - shift;
        count += 1.0;
        let delta = d - mean;
        mean += delta / count;
        m2 += delta * (d - mean);
    }
    part_out[chunk * p.lanes + lane] = mean;
    part_out[(p.nchunks + chunk) * p.lanes + lane] = m2;
}

// stats_partial_vec4: 0 p, 1 x_v, 2 part_out_v
@compute @workgroup_size(WG)
fn stats_partial_vec4(@builtin(global_invocation_id) gid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    let lane = i % p.lanes;
    let chunk = i / p.lanes;
    let shift = x_v[lane];
    var mean = vec4<f32>(0.0);
    var m2 = vec4<f32>(0.0);
    var count = 0.0;
    for (var r = chunk * p.chunk_rows; r < chunk_end(chunk); r++) {
        let d = x_v[r * p.lanes + lane] - shift;
        count += 1.0;
        let delta = d - mean;
        mean += delta / count;
        m2 += delta * (d - mean);
    }
    part_out_v[chunk * p.lanes + lane] = mean;
    part_out_v[(p.nchunks + chunk) * p.lanes + lane] = m2;
}

// stats_combine: 0 p, 1 x, 2 part_in2, 3 moving_mean_rw, 4 moving_var_rw,
// 5 save_mean_rw, 6 save_inv_std_rw. One invocation per channel.
@compute @workgroup_size(WG)
fn stats_combine(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = flat_index(gid, nwg, WG);
    if (c >= p.n) {
        return;
    }
    var count = 0.0;
    var mean = 0.0;
    var m2 = 0.0;
    for (var k = 0u; k < p.nchunks; k++) {
        let nb = f32(chunk_end(k) - k * p.chunk_rows);
        let mb = part_in2[k * p.channels + c];
        let m2b = part_in2[(p.nchunks + k) * p.channels + c];
        let total = count + nb;
        let delta = mb - mean;
        mean += delta * (nb / total);
        m2 += m2b + delta * delta * (count * nb / total);
        count = total;
    }
    let mu = x[c] + mean;
    let var_ = max(m2, 0.0) / f32(p.rows);
    save_mean_rw[c] = mu;
    save_inv_std_rw[c] = inverseSqrt(var_ + p.eps);
    moving_mean_rw[c] = moving_mean_rw[c] * p.momentum + mu * (1.0 - p.momentum);
    moving_var_rw[c] = moving_var_rw[c] * p.momentum + var_ * (1.0 - p.momentum);
}

// ---- y = post(γ·(x − μ)·s + β), s = inv_std (train) or 1/√(moving_var + ε)
// normalize: 0 p, 1 x, 2 gamma, 3 beta, 4 mean4 (μ), 5 scale5 (inv_std),
// 6 out6 (y), 7 step7
@compute @workgroup_size(WG)
fn normalize(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    let lane = i % p.lanes;
    let r0 = (i / p.lanes) * ROWS;
    let mu = mean4[lane];
    let g = gamma[lane] * scale5[lane];
    let b = beta[lane];
    let st = step7;
    for (var r = r0; r < min(r0 + ROWS, p.rows); r++) {
        let j = r * p.lanes + lane;
        out6[j] = post((x[j] - mu) * g + b, j, st);
    }
}

// normalize_vec4: 0 p, 1 x_v, 2 gamma_v, 3 beta_v, 4 mean4_v, 5 scale5_v,
// 6 out6_v, 7 step7
@compute @workgroup_size(WG)
fn normalize_vec4(@builtin(global_invocation_id) gid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    let lane = i % p.lanes;
    let r0 = (i / p.lanes) * ROWS;
    let mu = mean4_v[lane];
    let g = gamma_v[lane] * scale5_v[lane];
    let b = beta_v[lane];
    let st = step7;
    for (var r = r0; r < min(r0 + ROWS, p.rows); r++) {
        let j = r * p.lanes + lane;
        out6_v[j] = post4((x_v[j] - mu) * g + b, 4u * j, st);
    }
}

// infer: bindings as normalize without the step, with 4 = moving_mean and
// 5 = moving_var. Inference has no dropout: only the activation follows.
@compute @workgroup_size(WG)
fn infer(@builtin(global_invocation_id) gid: vec3<u32>,
         @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    let lane = i % p.lanes;
    let r0 = (i / p.lanes) * ROWS;
    let mu = mean4[lane];
    let g = gamma[lane] * inverseSqrt(scale5[lane] + p.eps);
    let b = beta[lane];
    for (var r = r0; r < min(r0 + ROWS, p.rows); r++) {
        let j = r * p.lanes + lane;
        out6[j] = act_apply(ACT, p.act_a, (x[j] - mu) * g + b);
    }
}

// infer_vec4: bindings as infer, vec4 views.
@compute @workgroup_size(WG)
fn infer_vec4(@builtin(global_invocation_id) gid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    let lane = i % p.lanes;
    let r0 = (i / p.lanes) * ROWS;
    let mu = mean4_v[lane];
    let g = gamma_v[lane] * inverseSqrt(scale5_v[lane] + p.eps);
    let b = beta_v[lane];
    for (var r = r0; r < min(r0 + ROWS, p.rows); r++) {
        let j = r * p.lanes + lane;
        let z = (x_v[j] - mu) * g + b;
        out6_v[j] = vec4<f32>(act_apply(ACT, p.act_a, z.x), act_apply(ACT, p.act_a, z.y),
                              act_apply(ACT, p.act_a, z.z), act_apply(ACT, p.act_a, z.w));
    }
}

// ---- backward ----------------------------------------------------------
// grad_partial: 0 p, 1 x, 2 dy, 3 mean3 (μ), 4 part_out_g, 5 scale5
// (inv_std), 6 gamma6, 7 beta7, 8 step8. Per chunk: Σdz and Σdz·(x − μ),
// dz the gradient back through post.
@compute @workgroup_size(WG)
fn grad_partial(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    let lane = i % p.lanes;
    let chunk = i / p.lanes;
    let mu = mean3[lane];
    let a = gamma6[lane] * scale5[lane];
    let b = beta7[lane];
    let st = step8;
    var sdy = 0.0;
    var sdyx = 0.0;
    for (var r = chunk * p.chunk_rows; r < chunk_end(chunk); r++) {
        let j = r * p.lanes + lane;
        let xc = x[j] - mu;
        let g = post_grad(xc * a + b, dy[j], j, st);
        sdy += g;
        sdyx += g * xc;
    }
    part_out_g[chunk * p.lanes + lane] = sdy;
    part_out_g[(p.nchunks + chunk) * p.lanes + lane] = sdyx;
}

// grad_partial_vec4: 0 p, 1 x_v, 2 dy_v, 3 mean3_v, 4 part_out_g_v,
// 5 scale5_v, 6 gamma6_v, 7 beta7_v, 8 step8
@compute @workgroup_size(WG)
fn grad_partial_vec4(@builtin(global_invocation_id) gid: vec3<u32>,
                     @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    let lane = i % p.lanes;
    let chunk = i / p.lanes;
    let mu = mean3_v[lane];
    let a = gamma6_v[lane] * scale5_v[lane];
    let b = beta7_v[lane];
    let st = step8;
    var sdy = vec4<f32>(0.0);
    var sdyx = vec4<f32>(0.0);
    for (var r = chunk * p.chunk_rows; r < chunk_end(chunk); r++) {
        let j = r * p.lanes + lane;
        let xc = x_v[j] - mu;
        let g = post_grad4(xc * a + b, dy_v[j], 4u * j, st);
        sdy += g;
        sdyx += g * xc;
    }
    part_out_g_v[chunk * p.lanes + lane] = sdy;
    part_out_g_v[(p.nchunks + chunk) * p.lanes + lane] = sdyx;
}

// grad_combine: 0 p, 1 part_in1, 2 inv_std2, 3 dgamma_rw, 4 dbeta_rw,
// 5 gamma5, 6 beta6, 7 mean7, 8 coef8. dβ = Σdz, dγ = Σdz·x̂ =
// inv_std·Σdz·(x − μ), and grad_input's coefficients. One invocation per
// channel.
@compute @workgroup_size(WG)
fn grad_combine(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = flat_index(gid, nwg, WG);
    if (c >= p.n) {
        return;
    }
    var sdy = 0.0;
    var sdyx = 0.0;
    for (var k = 0u; k < p.nchunks; k++) {
        sdy += part_in1[k * p.channels + c];
        sdyx += part_in1[(p.nchunks + k) * p.channels + c];
    }
    let s = inv_std2[c];
    let dg = sdyx * s;
    dbeta_rw[c] = sdy;
    dgamma_rw[c] = dg;
    let ch = p.channels;
    coef8[COEF_MEAN * ch + c] = mean7[c];
    coef8[COEF_INV_STD * ch + c] = s;
    coef8[COEF_SCALE * ch + c] = gamma5[c] * s;
    coef8[COEF_BETA * ch + c] = beta6[c];
    coef8[COEF_K * ch + c] = gamma5[c] * s / f32(p.rows);
    coef8[COEF_DGAMMA * ch + c] = dg;
    coef8[COEF_DBETA * ch + c] = sdy;
}

// grad_input: 0 p, 1 x, 2 dy, 3 coef3, 4 dx4, 5 step5.
// dx = γ·inv_std/R·(R·dz − dβ − x̂·dγ).
@compute @workgroup_size(WG)
fn grad_input(@builtin(global_invocation_id) gid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    let lane = i % p.lanes;
    let r0 = (i / p.lanes) * ROWS;
    let rows = f32(p.rows);
    let ch = p.channels;
    let mu = coef3[COEF_MEAN * ch + lane];
    let s = coef3[COEF_INV_STD * ch + lane];
    let a = coef3[COEF_SCALE * ch + lane];
    let b = coef3[COEF_BETA * ch + lane];
    let k = coef3[COEF_K * ch + lane];
    let dg = coef3[COEF_DGAMMA * ch + lane];
    let db = coef3[COEF_DBETA * ch + lane];
    let st = step5;
    for (var r = r0; r < min(r0 + ROWS, p.rows); r++) {
        let j = r * p.lanes + lane;
        let xc = x[j] - mu;
        let g = post_grad(xc * a + b, dy[j], j, st);
        dx4[j] = k * (rows * g - db - xc * s * dg);
    }
}

// grad_input_vec4: 0 p, 1 x_v, 2 dy_v, 3 coef3_v, 4 dx4_v, 5 step5
@compute @workgroup_size(WG)
fn grad_input_vec4(@builtin(global_invocation_id) gid: vec3<u32>,
                   @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= p.n) {
        return;
    }
    let lane = i % p.lanes;
    let r0 = (i / p.lanes) * ROWS;
    let rows = f32(p.rows);
    let l = p.lanes;
    let mu = coef3_v[COEF_MEAN * l + lane];
    let s = coef3_v[COEF_INV_STD * l + lane];
    let a = coef3_v[COEF_SCALE * l + lane];
    let b = coef3_v[COEF_BETA * l + lane];
    let k = coef3_v[COEF_K * l + lane];
    let dg = coef3_v[COEF_DGAMMA * l + lane];
    let db = coef3_v[COEF_DBETA * l + lane];
    let st = step5;
    for (var r = r0; r < min(r0 + ROWS, p.rows); r++) {
        let j = r * p.lanes + lane;
        let xc = x_v[j] - mu;
        let g = post_grad4(xc * a + b, dy_v[j], 4u * j, st);
        dx4_v[j] = k * (rows * g - db - xc * s * dg);
    }
}
