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
}

override WG: u32 = 64u;

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
@group(0) @binding(3) var<storage, read> gamma3: array<f32>;
@group(0) @binding(3) var<storage, read> gamma3_v: array<vec4<f32>>;

@group(0) @binding(4) var<storage, read_write> moving_var_rw: array<f32>;
@group(0) @binding(4) var<storage, read> mean4: array<f32>;
@group(0) @binding(4) var<storage, read> mean4_v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> part_out_g: array<f32>;
@group(0) @binding(4) var<storage, read_write> part_out_g_v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> dbeta_rw: array<f32>;

@group(0) @binding(5) var<storage, read_write> save_mean_rw: array<f32>;
@group(0) @binding(5) var<storage, read> scale5: array<f32>;
@group(0) @binding(5) var<storage, read> scale5_v: array<vec4<f32>>;

@group(0) @binding(6) var<storage, read_write> save_inv_std_rw: array<f32>;
@group(0) @binding(6) var<storage, read_write> out6: array<f32>;
@group(0) @binding(6) var<storage, read_write> out6_v: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> dgamma6: array<f32>;
@group(0) @binding(6) var<storage, read> dgamma6_v: array<vec4<f32>>;

@group(0) @binding(7) var<storage, read> dbeta7: array<f32>;
@group(0) @binding(7) var<storage, read> dbeta7_v: array<vec4<f32>>;

@group(0) @binding(8) var<storage, read_write> dx8: array<f32>;
@group(0) @binding(8) var<storage, read_write> dx8_v: array<vec4<f32>>;

// Rows handled by one invocation of the elementwise row passes: the
// per-channel parameters are loaded once per ROWS rows.
const ROWS: u32 = 8u;

fn chunk_end(chunk: u32) -> u32 {
    return min(p.rows, (chunk + 1u) * p.chunk_rows);
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

// ---- y = γ·(x − μ)·s + β, s = inv_std (train) or 1/√(moving_var + ε) ----
// normalize: 0 p, 1 x, 2 gamma, 3 beta, 4 mean4 (μ), 5 scale5 (inv_std), 6 out6 (y)
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
    for (var r = r0; r < min(r0 + ROWS, p.rows); r++) {
        let j = r * p.lanes + lane;
        out6[j] = (x[j] - mu) * g + b;
    }
}

// normalize_vec4: 0 p, 1 x_v, 2 gamma_v, 3 beta_v, 4 mean4_v, 5 scale5_v, 6 out6_v
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
    for (var r = r0; r < min(r0 + ROWS, p.rows); r++) {
        let j = r * p.lanes + lane;
        out6_v[j] = (x_v[j] - mu) * g + b;
    }
}

// infer: bindings as normalize, with 4 = moving_mean and 5 = moving_var.
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
        out6[j] = (x[j] - mu) * g + b;
    }
}

// infer_vec4: bindings as normalize_vec4, with 4 = moving_mean, 5 = moving_var.
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
        out6_v[j] = (x_v[j] - mu) * g + b;
    }
}

// ---- backward ----------------------------------------------------------
// grad_partial: 0 p, 1 x, 2 dy, 3 mean3 (μ), 4 part_out_g.
// Per chunk: Σdy and Σdy·(x − μ).
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
    var sdy = 0.0;
    var sdyx = 0.0;
    for (var r = chunk * p.chunk_rows; r < chunk_end(chunk); r++) {
        let j = r * p.lanes + lane;
        let g = dy[j];
        sdy += g;
        sdyx += g * (x[j] - mu);
    }
    part_out_g[chunk * p.lanes + lane] = sdy;
    part_out_g[(p.nchunks + chunk) * p.lanes + lane] = sdyx;
}

// grad_partial_vec4: 0 p, 1 x_v, 2 dy_v, 3 mean3_v, 4 part_out_g_v
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
    var sdy = vec4<f32>(0.0);
    var sdyx = vec4<f32>(0.0);
    for (var r = chunk * p.chunk_rows; r < chunk_end(chunk); r++) {
        let j = r * p.lanes + lane;
        let g = dy_v[j];
        sdy += g;
        sdyx += g * (x_v[j] - mu);
    }
    part_out_g_v[chunk * p.lanes + lane] = sdy;
    part_out_g_v[(p.nchunks + chunk) * p.lanes + lane] = sdyx;
}

// grad_combine: 0 p, 1 part_in1, 2 inv_std2, 3 dgamma_rw, 4 dbeta_rw.
// dβ = Σdy, dγ = Σdy·x̂ = inv_std·Σdy·(x − μ). One invocation per channel.
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
    dbeta_rw[c] = sdy;
    dgamma_rw[c] = sdyx * inv_std2[c];
}

// grad_input: 0 p, 1 x, 2 dy, 3 gamma3, 4 mean4, 5 scale5 (inv_std),
// 6 dgamma6, 7 dbeta7, 8 dx8. dx = γ·inv_std/R·(R·dy − dβ − x̂·dγ).
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
    let mu = mean4[lane];
    let s = scale5[lane];
    let k = gamma3[lane] * s / rows;
    let dg = dgamma6[lane];
    let db = dbeta7[lane];
    for (var r = r0; r < min(r0 + ROWS, p.rows); r++) {
        let j = r * p.lanes + lane;
        dx8[j] = k * (rows * dy[j] - db - (x[j] - mu) * s * dg);
    }
}

// grad_input_vec4: 0 p, 1 x_v, 2 dy_v, 3 gamma3_v, 4 mean4_v, 5 scale5_v,
// 6 dgamma6_v, 7 dbeta7_v, 8 dx8_v
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
    let mu = mean4_v[lane];
    let s = scale5_v[lane];
    let k = gamma3_v[lane] * s / rows;
    let dg = dgamma6_v[lane];
    let db = dbeta7_v[lane];
    for (var r = r0; r < min(r0 + ROWS, p.rows); r++) {
        let j = r * p.lanes + lane;
        dx8_v[j] = k * (rows * dy_v[j] - db - (x_v[j] - mu) * s * dg);
    }
}
