//! Batch normalization, Keras semantics (`shaders/batchnorm.wgsl`).
//!
//! x is viewed as [rows, channels] row-major: rows = N for dense inputs,
//! N·H·W for NHWC conv inputs. Training forward uses the batch mean and the
//! biased variance, updates the moving statistics with `momentum` and saves
//! μ and inv_std = 1/√(σ² + ε) for backward. Keras defaults: momentum 0.99,
//! ε 1e-3.
//!
//! Each call returns its dispatches in order; record them into one pass (or
//! consecutive passes). Per-channel reductions run in two levels (chunks of
//! `CHUNK_ROWS` rows, then one combine per channel) through a scratch buffer
//! allocated when the dispatches are built.
//!
//! A [`BnPost`] fuses what follows the layer into its row passes: an
//! activation, then inverted dropout, so a BatchNorm → LeakyReLU → Dropout
//! chain makes two passes over its rows each way instead of four, and
//! neither intermediate tensor is stored. Backward recomputes the
//! normalized value from x and the saved statistics, and the dropout mask
//! from the step uniform.

use super::dropout::{self, DropoutMask};
use super::elementwise::ActKind;
use crate::gpu::{grid_1d, Bind, Binding, Dispatch, Gpu, KernelSpec, Result, View};
use crate::shaders::BATCHNORM;

/// Keras's default momentum for the moving statistics.
pub const MOMENTUM: f32 = 0.99;
/// Keras's default ε.
pub const EPSILON: f32 = 1e-3;

/// Rows per partial reduction. The summation depth (and so the rounding
/// error bound) is about CHUNK_ROWS + rows / CHUNK_ROWS, near its minimum
/// for the CNN's 32,768 rows; it also leaves rows/128 · channels/4
/// invocations, enough to fill lavapipe's two cores.
pub const CHUNK_ROWS: usize = 128;
/// Rows per invocation of the elementwise passes (the shader's `ROWS`).
const ROWS_PER_INVOCATION: usize = 8;
const WG: u32 = 64;

use Binding::{Storage as R, StorageRw as W, Uniform as U};

macro_rules! spec {
    ($name:ident, $entry:literal, $bindings:expr) => {
        #[doc = concat!("`batchnorm.wgsl`'s `", $entry, "`.")]
        pub static $name: KernelSpec = KernelSpec {
            shader: &BATCHNORM,
            entry: $entry,
            bindings: $bindings,
        };
    };
}

spec!(STATS_PARTIAL, "stats_partial", &[U, R, W]);
spec!(STATS_PARTIAL_VEC4, "stats_partial_vec4", &[U, R, W]);
spec!(STATS_COMBINE, "stats_combine", &[U, R, R, W, W, W, W]);
spec!(NORMALIZE, "normalize", &[U, R, R, R, R, R, W, U]);
spec!(NORMALIZE_VEC4, "normalize_vec4", &[U, R, R, R, R, R, W, U]);
spec!(INFER, "infer", &[U, R, R, R, R, R, W]);
spec!(INFER_VEC4, "infer_vec4", &[U, R, R, R, R, R, W]);
spec!(GRAD_PARTIAL, "grad_partial", &[U, R, R, R, W, R, R, R, U]);
spec!(
    GRAD_PARTIAL_VEC4,
    "grad_partial_vec4",
    &[U, R, R, R, W, R, R, R, U]
);
spec!(GRAD_COMBINE, "grad_combine", &[U, R, R, W, W, R, R, R, W]);
spec!(GRAD_INPUT, "grad_input", &[U, R, R, R, W, U]);
spec!(GRAD_INPUT_VEC4, "grad_input_vec4", &[U, R, R, R, W, U]);

/// Per-channel coefficients `grad_combine` hands to `grad_input` (the
/// shader's `COEF_*` planes): there are too many per-channel tensors to
/// bind them one by one within WebGPU's 8 storage buffers per stage.
const COEF_PLANES: usize = 7;

/// What runs on the normalized values within the layer's own passes: the
/// layers that follow it, fused.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BnPost {
    /// An activation applied to the output.
    pub act: Option<ActKind>,
    /// Then inverted dropout (training only), with the mask the `dropout`
    /// kernel draws for the same layer.
    pub dropout: Option<DropoutMask>,
}

impl BnPost {
    /// Nothing follows: the plain layer.
    pub fn is_none(&self) -> bool {
        self.act.is_none() && self.dropout.is_none()
    }

    fn constants(&self) -> [(&'static str, f64); 3] {
        [
            ("WG", WG as f64),
            ("ACT", ActKind::code(self.act).0 as f64),
            ("DROPOUT", self.dropout.is_some() as u32 as f64),
        ]
    }
}

/// x viewed as [rows, channels] row-major.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BnShape {
    /// N for dense inputs, N·H·W for NHWC images.
    pub rows: usize,
    /// Normalized channels (the last axis).
    pub channels: usize,
}

impl BnShape {
    /// Elements of x: rows·channels.
    pub fn len(&self) -> usize {
        self.rows * self.channels
    }

    /// No elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Chunks of the two-level reductions.
    pub fn chunks(&self) -> usize {
        self.rows.div_ceil(CHUNK_ROWS)
    }

    fn vec4(&self) -> bool {
        self.channels % 4 == 0
    }

    /// Invocation "lanes" per row: channels, or groups of four channels.
    fn lanes(&self) -> usize {
        if self.vec4() {
            self.channels / 4
        } else {
            self.channels
        }
    }
}

/// The layer's per-channel parameters and state, each `channels` floats.
pub struct BnBuffers<'a> {
    /// Scale γ.
    pub gamma: View<'a>,
    /// Offset β.
    pub beta: View<'a>,
    /// Moving mean: read in inference, updated in training.
    pub moving_mean: View<'a>,
    /// Moving (biased) variance: read in inference, updated in training.
    pub moving_var: View<'a>,
    /// Batch mean, written by `forward_train`, read by `backward`.
    pub save_mean: View<'a>,
    /// 1/√(σ² + ε) of the batch, written by `forward_train`, read by `backward`.
    pub save_inv_std: View<'a>,
}

impl BnBuffers<'_> {
    fn assert_hold(&self, channels: usize) {
        for (what, b) in [
            ("gamma", self.gamma),
            ("beta", self.beta),
            ("moving_mean", self.moving_mean),
            ("moving_var", self.moving_var),
            ("save_mean", self.save_mean),
            ("save_inv_std", self.save_inv_std),
        ] {
            assert_holds(what, b, channels);
        }
    }
}

fn assert_holds<'b>(what: &str, buf: impl Bind<'b>, elems: usize) {
    assert!(
        buf.size() >= (elems * 4) as u64,
        "batchnorm: {what} holds {} bytes, needs {}",
        buf.size(),
        elems * 4
    );
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    channels: u32,
    lanes: u32,
    chunk_rows: u32,
    nchunks: u32,
    n: u32,
    momentum: f32,
    eps: f32,
    act_a: f32,
    drop_threshold: u32,
    drop_scale: f32,
    drop_stream: u32,
}

/// One dispatch; `post` is applied where the entry point applies one.
#[allow(clippy::too_many_arguments)]
fn launch(
    gpu: &Gpu,
    spec: &KernelSpec,
    s: BnShape,
    lanes: usize,
    n: usize,
    (momentum, eps): (f32, f32),
    post: Option<BnPost>,
    buffers: &[View<'_>],
) -> Result<Dispatch> {
    let constants = post.map(|p| p.constants());
    let post = post.unwrap_or_default();
    let drop = post.dropout.unwrap_or(DropoutMask {
        rate: 0.0,
        stream: 0,
    });
    gpu.launch(
        spec,
        constants
            .as_ref()
            .map_or(&[("WG", WG as f64)][..], |c| &c[..]),
        &Params {
            rows: s.rows as u32,
            channels: s.channels as u32,
            lanes: lanes as u32,
            chunk_rows: CHUNK_ROWS as u32,
            nchunks: s.chunks() as u32,
            n: n as u32,
            momentum,
            eps,
            act_a: ActKind::code(post.act).1,
            drop_threshold: dropout::cpu::threshold(drop.rate),
            drop_scale: dropout::cpu::scale(drop.rate),
            drop_stream: drop.stream,
        },
        buffers,
        grid_1d(n as u64, WG),
    )
}

/// A row pass (partials or elementwise): scalar or vec4 entry point.
#[allow(clippy::too_many_arguments)]
fn row_pass(
    gpu: &Gpu,
    scalar: &KernelSpec,
    vec4: &KernelSpec,
    s: BnShape,
    row_groups: usize,
    momentum_eps: (f32, f32),
    post: Option<BnPost>,
    buffers: &[View<'_>],
) -> Result<Dispatch> {
    let spec = if s.vec4() { vec4 } else { scalar };
    let n = row_groups * s.lanes();
    launch(gpu, spec, s, s.lanes(), n, momentum_eps, post, buffers)
}

fn scratch(gpu: &Gpu, s: BnShape) -> Result<wgpu::Buffer> {
    gpu.storage(
        "batchnorm partials",
        (2 * s.chunks() * s.channels * 4) as u64,
    )
}

/// Training forward: y = post(γ·(x − μ)·inv_std + β) with batch statistics;
/// writes save_mean and save_inv_std and updates moving_mean and moving_var
/// (each run of the returned dispatches is one update). `step` holds the
/// `StepUniform` a fused dropout draws its mask from. Empty for an empty
/// shape.
#[allow(clippy::too_many_arguments)]
pub fn forward_train<'b>(
    gpu: &Gpu,
    s: BnShape,
    x: impl Bind<'b>,
    y: impl Bind<'b>,
    p: &BnBuffers,
    (momentum, eps): (f32, f32),
    post: BnPost,
    step: impl Bind<'b>,
) -> Result<Vec<Dispatch>> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    assert_holds("x", x, s.len());
    assert_holds("y", y, s.len());
    p.assert_hold(s.channels);
    let part = scratch(gpu, s)?;
    let row_groups = s.rows.div_ceil(ROWS_PER_INVOCATION);
    Ok(vec![
        row_pass(
            gpu,
            &STATS_PARTIAL,
            &STATS_PARTIAL_VEC4,
            s,
            s.chunks(),
            (momentum, eps),
            None,
            &[x.view(), (&part).view()],
        )?,
        launch(
            gpu,
            &STATS_COMBINE,
            s,
            s.channels,
            s.channels,
            (momentum, eps),
            None,
            &[
                x.view(),
                (&part).view(),
                p.moving_mean.view(),
                p.moving_var.view(),
                p.save_mean.view(),
                p.save_inv_std.view(),
            ],
        )?,
        row_pass(
            gpu,
            &NORMALIZE,
            &NORMALIZE_VEC4,
            s,
            row_groups,
            (momentum, eps),
            Some(post),
            &[
                x.view(),
                p.gamma.view(),
                p.beta.view(),
                p.save_mean.view(),
                p.save_inv_std.view(),
                y.view(),
                step.view(),
            ],
        )?,
    ])
}

/// Inference: y = act(γ·(x − moving_mean)/√(moving_var + ε) + β), the
/// activation fused where `act` is one (inference has no dropout).
pub fn forward_infer<'b>(
    gpu: &Gpu,
    s: BnShape,
    x: impl Bind<'b>,
    y: impl Bind<'b>,
    p: &BnBuffers,
    eps: f32,
    act: Option<ActKind>,
) -> Result<Vec<Dispatch>> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    assert_holds("x", x, s.len());
    assert_holds("y", y, s.len());
    p.assert_hold(s.channels);
    Ok(vec![row_pass(
        gpu,
        &INFER,
        &INFER_VEC4,
        s,
        s.rows.div_ceil(ROWS_PER_INVOCATION),
        (0.0, eps),
        Some(BnPost { act, dropout: None }),
        &[
            x.view(),
            p.gamma.view(),
            p.beta.view(),
            p.moving_mean.view(),
            p.moving_var.view(),
            y.view(),
        ],
    )?])
}

/// Training-mode backward from the saved batch statistics, `dy` the
/// gradient of `post`'s output: with dz = dy back through `post` (the
/// dropout mask regenerated from `step`, the activation's derivative at the
/// recomputed z = γ·x̂ + β), dβ = Σdz, dγ = Σdz·x̂,
/// dx = γ·inv_std/R·(R·dz − dβ − x̂·dγ), with x̂ = (x − μ)·inv_std.
/// Overwrites dx, dgamma and dbeta.
#[allow(clippy::too_many_arguments)]
pub fn backward<'b>(
    gpu: &Gpu,
    s: BnShape,
    x: impl Bind<'b>,
    dy: impl Bind<'b>,
    p: &BnBuffers,
    (dx, dgamma, dbeta): (impl Bind<'b>, impl Bind<'b>, impl Bind<'b>),
    post: BnPost,
    step: impl Bind<'b>,
) -> Result<Vec<Dispatch>> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    for (what, b) in [("x", x.view()), ("dy", dy.view()), ("dx", dx.view())] {
        assert_holds(what, b, s.len());
    }
    assert_holds("dgamma", dgamma, s.channels);
    assert_holds("dbeta", dbeta, s.channels);
    p.assert_hold(s.channels);
    let part = scratch(gpu, s)?;
    let coef = gpu.storage(
        "batchnorm coefficients",
        (COEF_PLANES * s.channels * 4) as u64,
    )?;
    Ok(vec![
        row_pass(
            gpu,
            &GRAD_PARTIAL,
            &GRAD_PARTIAL_VEC4,
            s,
            s.chunks(),
            (0.0, 0.0),
            Some(post),
            &[
                x.view(),
                dy.view(),
                p.save_mean.view(),
                (&part).view(),
                p.save_inv_std.view(),
                p.gamma.view(),
                p.beta.view(),
                step.view(),
            ],
        )?,
        launch(
            gpu,
            &GRAD_COMBINE,
            s,
            s.channels,
            s.channels,
            (0.0, 0.0),
            None,
            &[
                (&part).view(),
                p.save_inv_std.view(),
                dgamma.view(),
                dbeta.view(),
                p.gamma.view(),
                p.beta.view(),
                p.save_mean.view(),
                (&coef).view(),
            ],
        )?,
        row_pass(
            gpu,
            &GRAD_INPUT,
            &GRAD_INPUT_VEC4,
            s,
            s.rows.div_ceil(ROWS_PER_INVOCATION),
            (0.0, 0.0),
            Some(post),
            &[x.view(), dy.view(), (&coef).view(), dx.view(), step.view()],
        )?,
    ])
}

/// Plain-Rust references, computed in f64 (two-pass statistics) and
/// rounded once to f32. The `*_f64` twins serve the gradient checks.
pub mod cpu {
    use super::{BnPost, BnShape};
    use crate::kernels::elementwise::ActKind;
    use crate::kernels::{dropout, elementwise};

    /// What a training step computes per batch.
    pub struct TrainOut<T> {
        /// The output, [rows, channels].
        pub y: Vec<T>,
        /// Batch mean, `[channels]`.
        pub mean: Vec<T>,
        /// Biased batch variance (what the moving variance is updated with).
        pub var: Vec<T>,
        /// 1/√(var + ε), `[channels]`.
        pub inv_std: Vec<T>,
    }

    /// Training forward in f64: returns y and the batch statistics (the
    /// moving statistics are the caller's to update).
    pub fn forward_train_f64(
        s: BnShape,
        x: &[f64],
        gamma: &[f64],
        beta: &[f64],
        eps: f64,
    ) -> TrainOut<f64> {
        let (r, c) = (s.rows, s.channels);
        assert_eq!(x.len(), r * c, "batchnorm: x length");
        assert_eq!(gamma.len(), c, "batchnorm: gamma length");
        assert_eq!(beta.len(), c, "batchnorm: beta length");
        let mut mean = vec![0.0; c];
        for row in x.chunks(c) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= r as f64);
        let mut var = vec![0.0; c];
        for row in x.chunks(c) {
            for ((v, xv), m) in var.iter_mut().zip(row).zip(&mean) {
                *v += (xv - m) * (xv - m);
            }
        }
        var.iter_mut().for_each(|v| *v /= r as f64);
        let inv_std: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
        let mut y = vec![0.0; r * c];
        for (yr, xr) in y.chunks_mut(c).zip(x.chunks(c)) {
            for j in 0..c {
                yr[j] = gamma[j] * (xr[j] - mean[j]) * inv_std[j] + beta[j];
            }
        }
        TrainOut {
            y,
            mean,
            var,
            inv_std,
        }
    }

    /// Rows per chunk of the threaded passes (a fixed cut, whatever the
    /// thread count, so every sum keeps its order).
    const ROWS: usize = 128;

    /// Σ over rows of `f(row range, partial)` into one `width`-long f64
    /// vector: one partial per fixed chunk of rows (in parallel), added in
    /// chunk order.
    fn chunk_sums(
        rows: usize,
        width: usize,
        f: impl Fn(std::ops::Range<usize>, &mut [f64]) + Sync,
    ) -> Vec<f64> {
        let n = rows.div_ceil(ROWS);
        let mut parts = vec![0.0f64; n * width];
        crate::par::chunks_mut(&mut parts, width.max(1), |i, p| {
            f(i * ROWS..((i + 1) * ROWS).min(rows), p)
        });
        let mut total = vec![0.0f64; width];
        for p in parts.chunks(width.max(1)) {
            for (t, v) in total.iter_mut().zip(p) {
                *t += v;
            }
        }
        total
    }

    /// Training forward; updates `moving_mean` and `moving_var` in place.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_train(
        s: BnShape,
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        moving_mean: &mut [f32],
        moving_var: &mut [f32],
        momentum: f32,
        eps: f32,
    ) -> TrainOut<f32> {
        let c = s.channels;
        let mut out = TrainOut {
            y: vec![0.0; s.len()],
            mean: vec![0.0; c],
            var: vec![0.0; c],
            inv_std: vec![0.0; c],
        };
        let stats = BnStats {
            moving_mean,
            moving_var,
            momentum,
            eps,
            mean: &mut out.mean,
            inv_std: &mut out.inv_std,
            var: Some(&mut out.var),
        };
        forward_train_into(s, x, gamma, beta, stats, &mut out.y);
        out
    }

    /// The statistics a training forward reads and writes.
    pub struct BnStats<'a> {
        /// Moving mean, updated in place.
        pub moving_mean: &'a mut [f32],
        /// Moving variance, updated in place.
        pub moving_var: &'a mut [f32],
        /// Moving-average momentum.
        pub momentum: f32,
        /// ε.
        pub eps: f32,
        /// The batch mean, written.
        pub mean: &'a mut [f32],
        /// 1/√(var + ε), written.
        pub inv_std: &'a mut [f32],
        /// The biased batch variance, written when asked for.
        pub var: Option<&'a mut [f32]>,
    }

    /// [`forward_train`] into `y` and `st`, summed in f64 over fixed
    /// chunks of rows, on all threads.
    pub fn forward_train_into(
        s: BnShape,
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        st: BnStats,
        y: &mut [f32],
    ) {
        let (r, c) = (s.rows, s.channels);
        assert_eq!(x.len(), r * c, "batchnorm: x length");
        assert_eq!(y.len(), r * c, "batchnorm: y length");
        assert_eq!(gamma.len(), c, "batchnorm: gamma length");
        assert_eq!(beta.len(), c, "batchnorm: beta length");
        let rows = |rr: std::ops::Range<usize>| x[rr.start * c..rr.end * c].chunks_exact(c);
        let mut mean = chunk_sums(r, c, |rr, p| {
            for row in rows(rr) {
                for (m, &v) in p.iter_mut().zip(row) {
                    *m += v as f64;
                }
            }
        });
        mean.iter_mut().for_each(|m| *m /= r as f64);
        let mut var = chunk_sums(r, c, |rr, p| {
            for row in rows(rr) {
                for ((a, &v), m) in p.iter_mut().zip(row).zip(&mean) {
                    let d = v as f64 - m;
                    *a += d * d;
                }
            }
        });
        var.iter_mut().for_each(|v| *v /= r as f64);
        let inv_std: Vec<f64> = var
            .iter()
            .map(|v| 1.0 / (v + st.eps as f64).sqrt())
            .collect();
        let (g, bt): (Vec<f64>, Vec<f64>) = (
            gamma.iter().map(|&v| v as f64).collect(),
            beta.iter().map(|&v| v as f64).collect(),
        );
        crate::par::chunks_mut(y, ROWS * c.max(1), |i, y| {
            for (yr, xr) in y.chunks_exact_mut(c).zip(x[i * ROWS * c..].chunks_exact(c)) {
                for j in 0..c {
                    yr[j] = (g[j] * (xr[j] as f64 - mean[j]) * inv_std[j] + bt[j]) as f32;
                }
            }
        });
        let m = st.momentum as f64;
        for (mm, mu) in st.moving_mean.iter_mut().zip(&mean) {
            *mm = (*mm as f64 * m + mu * (1.0 - m)) as f32;
        }
        for (mv, v) in st.moving_var.iter_mut().zip(&var) {
            *mv = (*mv as f64 * m + v * (1.0 - m)) as f32;
        }
        for (o, v) in st.mean.iter_mut().zip(&mean) {
            *o = *v as f32;
        }
        for (o, v) in st.inv_std.iter_mut().zip(&inv_std) {
            *o = *v as f32;
        }
        if let Some(out) = st.var {
            for (o, v) in out.iter_mut().zip(&var) {
                *o = *v as f32;
            }
        }
    }

    /// Inference: `y = γ·(x − moving_mean)/√(moving_var + ε) + β`.
    pub fn forward_infer(
        s: BnShape,
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        moving_mean: &[f32],
        moving_var: &[f32],
        eps: f32,
    ) -> Vec<f32> {
        let mut y = vec![0.0; s.len()];
        forward_infer_into(s, x, gamma, beta, moving_mean, moving_var, eps, &mut y);
        y
    }

    /// [`forward_infer`] into `y`, on all threads.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_infer_into(
        s: BnShape,
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        moving_mean: &[f32],
        moving_var: &[f32],
        eps: f32,
        y: &mut [f32],
    ) {
        let c = s.channels;
        assert_eq!(x.len(), s.len(), "batchnorm: x length");
        assert_eq!(y.len(), s.len(), "batchnorm: y length");
        let scale: Vec<f64> = (0..c)
            .map(|j| gamma[j] as f64 / (moving_var[j] as f64 + eps as f64).sqrt())
            .collect();
        crate::par::chunks_mut(y, ROWS * c.max(1), |i, y| {
            for (yr, xr) in y.chunks_exact_mut(c).zip(x[i * ROWS * c..].chunks_exact(c)) {
                for j in 0..c {
                    yr[j] =
                        ((xr[j] as f64 - moving_mean[j] as f64) * scale[j] + beta[j] as f64) as f32;
                }
            }
        });
    }

    /// Applies `post` in place to the layer's normalized output, as the
    /// shader's normalize pass does; `(seed, step)` draw the dropout mask.
    pub fn post_into(post: BnPost, (seed, step): (u64, u32), y: &mut [f32]) {
        if let Some(kind) = post.act {
            elementwise::cpu::forward_in_place(kind, y);
        }
        if let Some(d) = post.dropout {
            dropout::cpu::apply_in_place(seed, step, d.stream, d.rate, y);
        }
    }

    /// The per-channel tensors of one layer, each `[channels]`.
    #[derive(Clone, Copy)]
    pub struct BnChannels<'a> {
        /// γ.
        pub gamma: &'a [f32],
        /// β.
        pub beta: &'a [f32],
        /// The saved batch mean.
        pub mean: &'a [f32],
        /// The saved 1/√(σ² + ε).
        pub inv_std: &'a [f32],
    }

    /// (dx, dγ, dβ) in training mode from the saved mean and inv_std.
    pub fn backward_f64(
        s: BnShape,
        x: &[f64],
        dy: &[f64],
        gamma: &[f64],
        mean: &[f64],
        inv_std: &[f64],
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let (r, c) = (s.rows, s.channels);
        assert_eq!(x.len(), r * c, "batchnorm: x length");
        assert_eq!(dy.len(), r * c, "batchnorm: dy length");
        let xhat = |row: usize, j: usize| (x[row * c + j] - mean[j]) * inv_std[j];
        let mut dgamma = vec![0.0; c];
        let mut dbeta = vec![0.0; c];
        for row in 0..r {
            for j in 0..c {
                dbeta[j] += dy[row * c + j];
                dgamma[j] += dy[row * c + j] * xhat(row, j);
            }
        }
        let rf = r as f64;
        let mut dx = vec![0.0; r * c];
        for row in 0..r {
            for j in 0..c {
                dx[row * c + j] = gamma[j] * inv_std[j] / rf
                    * (rf * dy[row * c + j] - dbeta[j] - xhat(row, j) * dgamma[j]);
            }
        }
        (dx, dgamma, dbeta)
    }

    /// (dx, dgamma, dbeta) from the saved batch statistics, as `backward_f64`.
    pub fn backward(
        s: BnShape,
        x: &[f32],
        dy: &[f32],
        gamma: &[f32],
        mean: &[f32],
        inv_std: &[f32],
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let c = s.channels;
        let (mut dx, mut dg, mut db) = (vec![0.0; s.len()], vec![0.0; c], vec![0.0; c]);
        backward_into(s, x, dy, gamma, mean, inv_std, (&mut dx, &mut dg, &mut db));
        (dx, dg, db)
    }

    /// [`backward`] into (dx, dgamma, dbeta), summed in f64 over fixed
    /// chunks of rows, on all threads.
    pub fn backward_into(
        s: BnShape,
        x: &[f32],
        dy: &[f32],
        gamma: &[f32],
        mean: &[f32],
        inv_std: &[f32],
        out: (&mut [f32], &mut [f32], &mut [f32]),
    ) {
        backward_with(s, x, Some(dy), (gamma, mean, inv_std), out);
    }

    /// [`backward_into`] where `dy` is the gradient of `post`'s output: dz,
    /// the gradient of the normalized output z, is dy through the redrawn
    /// dropout mask and then the activation's derivative at z, recomputed
    /// from x and the saved statistics as the shader recomputes it, in f32:
    /// (x − μ)·(γ·inv_std) + β. dz goes through dx, which the layer's
    /// gradient then overwrites in place.
    pub fn backward_post_into(
        s: BnShape,
        (x, dy): (&[f32], &[f32]),
        p: BnChannels,
        (post, (seed, step)): (BnPost, (u64, u32)),
        out: (&mut [f32], &mut [f32], &mut [f32]),
    ) {
        let stats = (p.gamma, p.mean, p.inv_std);
        if post.is_none() {
            return backward_with(s, x, Some(dy), stats, out);
        }
        let (dx, dgamma, dbeta) = out;
        match post.dropout {
            Some(d) => dropout::cpu::apply_into(seed, step, d.stream, d.rate, dy, dx),
            None => dx.copy_from_slice(dy),
        }
        match post.act {
            None => {}
            // The same arithmetic as `elementwise::cpu::grad` (g·1 is g),
            // with the match out of the loop and the factor selected
            // rather than branched on: the signs of z are random. The
            // closures own what they read (`move`), so the stores to g
            // cannot alias it and the loop vectorizes.
            Some(ActKind::Relu) => {
                act_grad_in_place(s, x, p, dx, move |z, g| g * if z > 0.0 { 1.0 } else { 0.0 })
            }
            Some(ActKind::LeakyRelu(a)) => {
                act_grad_in_place(s, x, p, dx, move |z, g| g * if z > 0.0 { 1.0 } else { a })
            }
            Some(kind) => {
                act_grad_in_place(s, x, p, dx, move |z, g| elementwise::cpu::grad(kind, z, g))
            }
        }
        backward_with(s, x, None, stats, (dx, dgamma, dbeta));
    }

    /// g ← grad(z, g) elementwise, z = (x − μ)·(γ·inv_std) + β, on all threads.
    fn act_grad_in_place(
        s: BnShape,
        x: &[f32],
        p: BnChannels,
        g: &mut [f32],
        grad: impl Fn(f32, f32) -> f32 + Sync,
    ) {
        let c = s.channels;
        let scale: Vec<f32> = (0..c).map(|j| p.gamma[j] * p.inv_std[j]).collect();
        crate::par::chunks_mut(g, ROWS * c.max(1), |i, g| {
            for (gr, xr) in g.chunks_exact_mut(c).zip(x[i * ROWS * c..].chunks_exact(c)) {
                let per_channel = p.mean.iter().zip(&scale).zip(p.beta);
                for ((o, &v), ((m, a), b)) in gr.iter_mut().zip(xr).zip(per_channel) {
                    *o = grad((v - m) * a + b, *o);
                }
            }
        });
    }

    /// The backward passes, dz read from `dy`, or from dx itself when `dy`
    /// is None.
    fn backward_with(
        s: BnShape,
        x: &[f32],
        dy: Option<&[f32]>,
        (gamma, mean, inv_std): (&[f32], &[f32], &[f32]),
        out: (&mut [f32], &mut [f32], &mut [f32]),
    ) {
        let (r, c) = (s.rows, s.channels);
        let (dx, dgamma_out, dbeta_out) = out;
        assert_eq!(x.len(), r * c, "batchnorm: x length");
        assert_eq!(dx.len(), r * c, "batchnorm: dx length");
        assert!(dy.is_none_or(|d| d.len() == r * c), "batchnorm: dy length");
        let mu: Vec<f64> = mean.iter().map(|&v| v as f64).collect();
        let is: Vec<f64> = inv_std.iter().map(|&v| v as f64).collect();
        let dz: &[f32] = dy.unwrap_or(dx);
        let sums = chunk_sums(r, 2 * c, |rr, p| {
            let (pb, pg) = p.split_at_mut(c);
            let (xs, ds) = (&x[rr.start * c..rr.end * c], &dz[rr.start * c..rr.end * c]);
            for (xr, dr) in xs.chunks_exact(c).zip(ds.chunks_exact(c)) {
                for j in 0..c {
                    let d = dr[j] as f64;
                    pb[j] += d;
                    pg[j] += d * ((xr[j] as f64 - mu[j]) * is[j]);
                }
            }
        });
        let (dbeta, dgamma) = sums.split_at(c);
        let rf = r as f64;
        let k: Vec<f64> = (0..c).map(|j| gamma[j] as f64 * is[j] / rf).collect();
        let row = |o: &mut [f32], xr: &[f32], dr: Option<&[f32]>| {
            for j in 0..c {
                let xhat = (xr[j] as f64 - mu[j]) * is[j];
                let d = dr.map_or(o[j], |dr| dr[j]) as f64;
                o[j] = (k[j] * (rf * d - dbeta[j] - xhat * dgamma[j])) as f32;
            }
        };
        crate::par::chunks_mut(dx, ROWS * c.max(1), |i, dx| {
            let base = i * ROWS * c;
            let rows = dx.chunks_exact_mut(c).zip(x[base..].chunks_exact(c));
            match dy {
                Some(dy) => {
                    for ((o, xr), dr) in rows.zip(dy[base..].chunks_exact(c)) {
                        row(o, xr, Some(dr));
                    }
                }
                None => {
                    for (o, xr) in rows {
                        row(o, xr, None);
                    }
                }
            }
        });
        for (o, v) in dgamma_out.iter_mut().zip(dgamma) {
            *o = *v as f32;
        }
        for (o, v) in dbeta_out.iter_mut().zip(dbeta) {
            *o = *v as f32;
        }
    }
}
