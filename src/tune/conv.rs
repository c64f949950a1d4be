//! The convolution family of the tuner: for each pass of a Conv2D layer,
//! the implicit-GEMM kernel against the explicit im2col (and col2im) path,
//! each run on the same random inputs, checked against the built-in
//! method's output and timed; the fastest correct one wins. The explicit
//! path's GEMM is the built-in configuration of its shape.

use super::gemm::{gamma, judge, retime, time, Outcome};
use crate::gpu::timing::Clock;
use crate::gpu::{Dispatch, Gpu, Result, View};
use crate::kernels::conv::{self, cpu, Conv2dGeom, ConvMethod, ConvPass, Padding};
use crate::kernels::gemm::{Epilogue, GemmConfig};
use crate::util::Rng;

/// One pass of one convolution geometry, as the tuner keys it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvCase {
    /// Batch, channels and window.
    pub geom: Conv2dGeom,
    /// Forward, weight gradient or input gradient.
    pub pass: ConvPass,
}

impl ConvCase {
    /// "fwd 32x16x16x32 3x3/2 same →64": the pass, then batch×height×
    /// width×channels of x, the window, its strides (one number where they
    /// agree), the padding and the filters.
    pub fn describe(&self) -> String {
        let g = &self.geom;
        let w = &g.window;
        let stride = if w.stride_h == w.stride_w {
            w.stride_h.to_string()
        } else {
            format!("{}x{}", w.stride_h, w.stride_w)
        };
        let padding = match w.padding {
            Padding::Same => "same",
            Padding::Valid => "valid",
        };
        format!(
            "{} {}x{}x{}x{} {}x{}/{stride} {padding} →{}",
            self.pass.name(),
            g.batch,
            w.in_h,
            w.in_w,
            g.in_c,
            w.kh,
            w.kw,
            g.out_c
        )
    }

    /// The cache key: the family's name, then [`ConvCase::describe`].
    pub fn key(&self) -> String {
        format!("conv {}", self.describe())
    }

    /// The multiply-adds of the pass, doubled: the same for every method.
    pub fn flops(&self) -> f64 {
        self.pass.gemm_shape(&self.geom).flops()
    }
}

/// One method tried and its outcome.
#[derive(Clone, Debug)]
pub struct ConvTrial {
    /// The method run.
    pub method: ConvMethod,
    /// How it went.
    pub outcome: Outcome,
}

/// A tuned convolution pass.
#[derive(Clone, Debug)]
pub struct ConvResult {
    /// The case tuned.
    pub case: ConvCase,
    /// Every method, the built-in first.
    pub trials: Vec<ConvTrial>,
    /// The fastest correct method.
    pub winner: ConvMethod,
    /// Its time, in seconds.
    pub winner_s: f64,
    /// The built-in method.
    pub builtin: ConvMethod,
    /// Its time, in seconds.
    pub builtin_s: f64,
    /// How the times were taken.
    pub clock: Clock,
}

impl ConvResult {
    /// The winner's GFLOP/s.
    pub fn gflops(&self) -> f64 {
        self.case.flops() / self.winner_s * 1e-9
    }
}

/// The inputs' seed: every method of a case sees the same values.
const SEED: u64 = 0x636f_6e76;

/// Random operands of one pass on the host and the device, its output
/// buffer, and the rounding bound two correct methods' outputs stay within.
struct Inputs {
    /// x (forward, weight gradient) or dY (input gradient).
    src: wgpu::Buffer,
    /// W (forward, input gradient) or dY (weight gradient).
    other: wgpu::Buffer,
    /// The forward pass's bias.
    bias: wgpu::Buffer,
    /// The im2col matrix (or dY·Wᵀ for the input gradient).
    cols: wgpu::Buffer,
    /// y, dW (with db after it, as a layer's gradients lie), or dX.
    out: wgpu::Buffer,
    /// Where db starts in `out`, in bytes (the weight gradient only).
    db_at: u64,
    out_len: usize,
    bound: Vec<f64>,
}

impl Inputs {
    fn new(gpu: &Gpu, case: ConvCase) -> Result<Self> {
        let g = &case.geom;
        let mut rng = Rng::new(SEED);
        let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<f32>>();
        let mut cols = vec![0.0; g.col_rows() * g.col_cols()];
        // Σ|terms| per output (the reference on |values|) and the most
        // roundings a term passes through on its way to the output.
        let (src, other, bias, out_len, sum_abs, k) = match case.pass {
            ConvPass::Forward => {
                let x = rng.vec(g.input_len(), -1.0, 1.0);
                let w = rng.vec(g.weight_len(), -1.0, 1.0);
                let b = rng.vec(g.out_c, -1.0, 1.0);
                let mut s = vec![0.0; g.output_len()];
                let (ax, aw, ab) = (abs(&x), abs(&w), abs(&b));
                cpu::forward_into(g, &ax, &mut cols, &aw, Some(&ab), &mut s, Epilogue::None);
                (x, w, b, g.output_len(), s, g.col_cols())
            }
            ConvPass::WeightGrad => {
                let x = rng.vec(g.input_len(), -1.0, 1.0);
                let dy = rng.vec(g.output_len(), -1.0, 1.0);
                let mut s = vec![0.0; g.weight_len()];
                cpu::im2col_into(g, &abs(&x), &mut cols);
                cpu::weight_grad_from_cols(g, &cols, &abs(&dy), &mut s);
                (x, dy, vec![0.0; g.out_c], g.weight_len(), s, g.col_rows())
            }
            ConvPass::InputGrad => {
                let dy = rng.vec(g.output_len(), -1.0, 1.0);
                let w = rng.vec(g.weight_len(), -1.0, 1.0);
                let mut s = vec![0.0; g.input_len()];
                cpu::input_grad_into(g, &abs(&dy), &abs(&w), &mut cols, &mut s);
                // The implicit kernel's one chain of taps·out_c products;
                // the explicit path's out_c, then col2im's taps, is shorter.
                let k = g.out_c * g.window.taps();
                (dy, w, vec![0.0; g.out_c], g.input_len(), s, k)
            }
        };
        // As for the GEMM (`super::gemm`): each method within γ·Σ|terms|
        // (the bias and the epilogue's product two roundings more), the
        // host's sum rounded too.
        let gm = 2.0 * gamma(k + 2) * (1.0 + gamma(k + 1));
        let bound = sum_abs.iter().map(|&s| gm * f64::from(s)).collect();
        let db_at = (4 * out_len as u64).next_multiple_of(256);
        Ok(Inputs {
            src: gpu.upload_storage("tune conv src", &src)?,
            other: gpu.upload_storage("tune conv other", &other)?,
            bias: gpu.upload_storage("tune conv bias", &bias)?,
            cols: gpu.storage("tune conv cols", (4 * cols.len().max(1)) as u64)?,
            out: gpu.storage(
                "tune conv out",
                db_at + 4 * g.out_c.next_multiple_of(4) as u64,
            )?,
            db_at,
            out_len,
            bound,
        })
    }

    /// The pass by `method`; a weight gradient builds its own im2col
    /// matrix unless `cols_built` (the forward pass's method built it).
    fn dispatches(
        &self,
        gpu: &Gpu,
        case: ConvCase,
        method: ConvMethod,
        cols_built: bool,
    ) -> Result<Vec<Dispatch>> {
        let g = &case.geom;
        let config = GemmConfig::default_for(gpu, case.pass.gemm_shape(g));
        let how = (method, config);
        let out = View::new(&self.out, 0, (4 * self.out_len as u64).next_multiple_of(16));
        let (src, other, cols) = (
            (&self.src).into(),
            (&self.other).into(),
            (&self.cols).into(),
        );
        match case.pass {
            ConvPass::Forward => conv::forward(
                gpu,
                g,
                how,
                src,
                cols,
                other,
                Some((&self.bias).into()),
                out,
                Epilogue::LeakyRelu(0.2),
            ),
            ConvPass::WeightGrad => {
                let db = View::new(
                    &self.out,
                    self.db_at,
                    4 * g.out_c.next_multiple_of(4) as u64,
                );
                conv::weight_grad(gpu, g, how, cols_built, src, cols, other, out, Some(db))
            }
            ConvPass::InputGrad => conv::input_grad(gpu, g, how, src, other, cols, out),
        }
    }

    fn run_once(&self, gpu: &Gpu, ds: &[&Dispatch]) -> Result<Vec<f32>> {
        gpu.run("tune conv", ds)?;
        gpu.read_f32(&self.out, self.out_len)
    }
}

/// Tunes `case` over `ConvMethod::candidates`: the built-in method runs
/// first and is the reference the other's output must match within f32
/// rounding before its time counts. `cols_built` says whether the forward
/// pass of this geometry builds the im2col matrix (then a weight gradient
/// by im2col reuses it, and its time leaves the build out).
pub fn tune_case(gpu: &Gpu, case: ConvCase, cols_built: bool) -> Result<ConvResult> {
    let methods = ConvMethod::candidates(gpu, &case.geom, case.pass);
    let builtin = methods[0];
    let inputs = Inputs::new(gpu, case)?;
    let ds = inputs.dispatches(gpu, case, builtin, cols_built)?;
    let refs: Vec<&Dispatch> = ds.iter().collect();
    let reference = inputs.run_once(gpu, &refs)?;
    let first = gpu.time(&refs, 0, 1)?;
    let clock = first.clock;
    let mut builtin_s = time(gpu, &refs, first.min())?.min(first.min());
    let mut best = (builtin, builtin_s);
    let mut trials = vec![ConvTrial {
        method: builtin,
        outcome: Outcome::Timed(builtin_s),
    }];
    for &method in &methods[1..] {
        let outcome = (|| -> Result<Outcome> {
            let ds = inputs.dispatches(gpu, case, method, cols_built)?;
            let refs: Vec<&Dispatch> = ds.iter().collect();
            let out = inputs.run_once(gpu, &refs)?;
            judge(gpu, &refs, (&out, &reference, &inputs.bound), best.1)
        })()
        .unwrap_or_else(|e| Outcome::Failed(e.to_string()));
        if let Outcome::Timed(s) = outcome {
            if s < best.1 {
                best = (method, s);
            }
        }
        trials.push(ConvTrial { method, outcome });
    }
    retime(gpu, (builtin, &mut builtin_s, &refs), &mut best, |m| {
        inputs.dispatches(gpu, case, m, cols_built)
    })?;
    gpu.check()?;
    Ok(ConvResult {
        case,
        trials,
        winner: best.0,
        winner_s: best.1,
        builtin,
        builtin_s,
        clock,
    })
}
