//! The GEMM family of the tuner: every candidate configuration of one GEMM
//! case is run on the same random inputs, checked against the built-in
//! configuration's output, and timed; the fastest correct one wins.

use crate::gpu::timing::Clock;
use crate::gpu::{Dispatch, Gpu, Result};
use crate::kernels::gemm::{self, Epilogue, GemmConfig, GemmShape};
use crate::util::Rng;

/// A GEMM as the tuner keys it: the shape, and the two flags that change
/// its memory traffic (a bias read, C read back to accumulate into). The
/// epilogue is left out: it is a select per output on a uniform and runs
/// the same kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GemmCase {
    /// M, N, K and the transposes.
    pub shape: GemmShape,
    /// A bias is added.
    pub bias: bool,
    /// C += op(A)·op(B).
    pub accumulate: bool,
}

impl GemmCase {
    /// The case of a GEMM instruction.
    pub fn new(shape: GemmShape, bias: bool, accumulate: bool) -> Self {
        GemmCase {
            shape,
            bias,
            accumulate,
        }
    }

    /// "32x200x3072 NN bias", "3072x200x32 TN +=": M×N×K, then whether A
    /// and B are transposed (T) or not (N).
    pub fn describe(&self) -> String {
        let s = self.shape;
        let t = |b: bool| if b { 'T' } else { 'N' };
        format!(
            "{}x{}x{} {}{}{}{}",
            s.m,
            s.n,
            s.k,
            t(s.trans_a),
            t(s.trans_b),
            if self.bias { " bias" } else { "" },
            if self.accumulate { " +=" } else { "" }
        )
    }

    /// The cache key: the family's name, then [`GemmCase::describe`].
    pub fn key(&self) -> String {
        format!("gemm {}", self.describe())
    }
}

/// What became of one candidate.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Correct; the fastest of its timed runs, in seconds.
    Timed(f64),
    /// Correct, but its first timed run (seconds) took so much longer
    /// than the best so far that timing it further was skipped.
    Abandoned(f64),
    /// Its output differs from the built-in configuration's by more than
    /// f32 rounding allows: it never wins.
    Wrong {
        /// The largest difference over the bound, |c - ref| / bound.
        worst: f64,
    },
    /// The device refused it (pipeline creation or dispatch failed).
    Failed(String),
}

/// One candidate and its outcome.
#[derive(Clone, Debug)]
pub struct Trial {
    /// The configuration run.
    pub config: GemmConfig,
    /// How it went.
    pub outcome: Outcome,
}

/// A tuned case: every trial, the winner and the built-in choice.
#[derive(Clone, Debug)]
pub struct GemmResult {
    /// The case tuned.
    pub case: GemmCase,
    /// Every candidate, the built-in first.
    pub trials: Vec<Trial>,
    /// The fastest correct configuration.
    pub winner: GemmConfig,
    /// Its time, in seconds.
    pub winner_s: f64,
    /// The built-in configuration ([`GemmConfig::default_for`]).
    pub builtin: GemmConfig,
    /// Its time, in seconds.
    pub builtin_s: f64,
    /// How the times were taken.
    pub clock: Clock,
}

impl GemmResult {
    /// The winner's GFLOP/s (2·M·N·K per run).
    pub fn gflops(&self) -> f64 {
        self.case.shape.flops() / self.winner_s * 1e-9
    }
}

/// A candidate whose first timed run is this many times slower than the
/// best time so far is not timed further: more runs would only confirm
/// that it loses, and on CPU adapters a workgroup-tiled kernel can take
/// seconds per run. (The validation run before it is not compared: it
/// includes the driver's compilation on first use.)
const ABANDON_FACTOR: f64 = 3.0;
/// Timed runs per candidate: enough for about [`TARGET_S`] of work, within
/// these bounds. The fastest run counts: interference from other work on
/// the machine only ever adds time.
const MIN_REPS: usize = 3;
const MAX_REPS: usize = 10;
const TARGET_S: f64 = 0.02;

/// λ·√n·u, with u the unit roundoff of f32: the relative error of an
/// n-term sum of products in any order, Σ|terms| relative, except with
/// probability at most 2·exp(−λ²/2) (Higham and Mary's probabilistic
/// bound, rounding errors independent and of mean zero, as they are on
/// random inputs). The worst case, n·u, would be √n times larger: at the
/// CNN's K = 8192 it would let a dropped product term pass.
pub(super) fn gamma(n: usize) -> f64 {
    /// 2·exp(−32) ≈ 3e-14 per output.
    const LAMBDA: f64 = 8.0;
    LAMBDA * (n as f64).sqrt() * f64::from(f32::EPSILON) / 2.0
}

/// The inputs' seed: every candidate of a case sees the same values.
const SEED: u64 = 0x7475_6e65;

/// Random inputs of a case, on the host and the device.
struct Inputs {
    a: wgpu::Buffer,
    b: wgpu::Buffer,
    bias: Option<wgpu::Buffer>,
    c: wgpu::Buffer,
    c0: Vec<f32>,
    /// Per output, the largest difference two correct kernels can show:
    /// each is within γ·Σ|terms| of the exact value ([`gamma`]), so two are
    /// within twice that. K + 2 terms: the products, the bias or C added,
    /// and the epilogue's product (LeakyReLU's slope is below 1).
    bound: Vec<f64>,
}

impl Inputs {
    fn new(gpu: &Gpu, case: GemmCase) -> Result<Self> {
        let GemmShape { m, n, k, .. } = case.shape;
        let mut rng = Rng::new(SEED);
        let a = rng.vec(m * k, -1.0, 1.0);
        let b = rng.vec(k * n, -1.0, 1.0);
        let bias = case.bias.then(|| rng.vec(n, -1.0, 1.0));
        let c0 = if case.accumulate {
            rng.vec(m * n, -1.0, 1.0)
        } else {
            vec![0.0; m * n]
        };
        let bound = bound(case, &a, &b, bias.as_deref(), &c0);
        Ok(Inputs {
            a: gpu.upload_storage("tune a", &a)?,
            b: gpu.upload_storage("tune b", &b)?,
            bias: bias
                .map(|v| gpu.upload_storage("tune bias", &v))
                .transpose()?,
            c: gpu.upload_storage("tune c", &c0)?,
            c0,
            bound,
        })
    }

    fn dispatches(&self, gpu: &Gpu, case: GemmCase, config: GemmConfig) -> Result<Vec<Dispatch>> {
        let epilogue = if case.bias {
            Epilogue::LeakyRelu(0.2)
        } else {
            Epilogue::None
        };
        gemm::gemm_config(
            gpu,
            config,
            case.shape,
            &self.a,
            &self.b,
            self.bias.as_ref().map(Into::into),
            &self.c,
            epilogue,
            case.accumulate,
        )
    }

    /// One run from the initial C: the output.
    fn run_once(&self, gpu: &Gpu, ds: &[&Dispatch]) -> Result<Vec<f32>> {
        gpu.write(&self.c, &self.c0);
        gpu.run("tune", ds)?;
        gpu.read_f32(&self.c, self.c0.len())
    }
}

/// Per output, the largest difference two correct kernels can show (see
/// [`Inputs::bound`]).
fn bound(case: GemmCase, a: &[f32], b: &[f32], bias: Option<&[f32]>, c0: &[f32]) -> Vec<f64> {
    let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<f32>>();
    let mut sum_abs = abs(c0);
    gemm::cpu::gemm(
        case.shape,
        &abs(a),
        &abs(b),
        bias.map(abs).as_deref(),
        &mut sum_abs,
        Epilogue::None,
        case.accumulate,
    );
    let k = case.shape.k;
    // The host's own sum of |terms| is rounded too: γ_K more covers it.
    let g = 2.0 * gamma(k + 2) * (1.0 + gamma(k + 1));
    sum_abs.iter().map(|&s| g * f64::from(s)).collect()
}

/// The worst |out - reference| / bound, infinite for a non-finite value:
/// above 1, `out` is not `reference` up to rounding.
fn worst(out: &[f32], reference: &[f32], bound: &[f64]) -> f64 {
    out.iter()
        .zip(reference)
        .zip(bound)
        .map(|((&o, &r), &b)| {
            if !o.is_finite() {
                return f64::INFINITY;
            }
            let d = (f64::from(o) - f64::from(r)).abs();
            if d == 0.0 {
                0.0
            } else {
                d / b
            }
        })
        .fold(0.0, f64::max)
}

/// Tunes `case` over `gemm::candidates`: the built-in configuration runs
/// first and is the reference every other candidate's output must match
/// within f32 rounding before its time counts.
pub fn tune_case(gpu: &Gpu, case: GemmCase) -> Result<GemmResult> {
    let candidates = gemm::candidates(gpu, case.shape);
    let builtin = candidates[0];
    let inputs = Inputs::new(gpu, case)?;

    let ds = inputs.dispatches(gpu, case, builtin)?;
    let refs: Vec<&Dispatch> = ds.iter().collect();
    let reference = inputs.run_once(gpu, &refs)?;
    let first = gpu.time(&refs, 0, 1)?;
    let clock = first.clock;
    let mut builtin_s = time(gpu, &refs, first.min())?.min(first.min());
    let mut best = (builtin, builtin_s);
    let mut trials = vec![Trial {
        config: builtin,
        outcome: Outcome::Timed(builtin_s),
    }];

    for &config in &candidates[1..] {
        let outcome = match try_candidate(gpu, case, &inputs, config, &reference, best.1) {
            Ok(o) => o,
            // A configuration the driver rejects is reported, not fatal;
            // a lost device fails the next call on the built-in too.
            Err(e) => Outcome::Failed(e.to_string()),
        };
        if let Outcome::Timed(s) = outcome {
            if s < best.1 {
                best = (config, s);
            }
        }
        trials.push(Trial { config, outcome });
    }
    retime(gpu, (builtin, &mut builtin_s, &refs), &mut best, |c| {
        inputs.dispatches(gpu, case, c)
    })?;
    gpu.check()?;
    Ok(GemmResult {
        case,
        trials,
        winner: best.0,
        winner_s: best.1,
        builtin,
        builtin_s,
        clock,
    })
}

fn try_candidate(
    gpu: &Gpu,
    case: GemmCase,
    inputs: &Inputs,
    config: GemmConfig,
    reference: &[f32],
    best_s: f64,
) -> Result<Outcome> {
    let ds = inputs.dispatches(gpu, case, config)?;
    let refs: Vec<&Dispatch> = ds.iter().collect();
    let out = inputs.run_once(gpu, &refs)?;
    judge(gpu, &refs, (&out, reference, &inputs.bound), best_s)
}

/// The built-in ran first, the winner (`best`) later: both are timed once
/// more, so that a load that came or went meanwhile does not decide; the
/// built-in (its config, time and dispatches) keeps a tie. `dispatches`
/// builds a configuration's dispatches.
pub(super) fn retime<C: Copy + PartialEq>(
    gpu: &Gpu,
    (builtin, builtin_s, refs): (C, &mut f64, &[&Dispatch]),
    best: &mut (C, f64),
    dispatches: impl FnOnce(C) -> Result<Vec<Dispatch>>,
) -> Result<()> {
    if best.0 == builtin {
        return Ok(());
    }
    let win = dispatches(best.0)?;
    let win: Vec<&Dispatch> = win.iter().collect();
    *builtin_s = builtin_s.min(time(gpu, refs, *builtin_s)?);
    best.1 = best.1.min(time(gpu, &win, best.1)?);
    if *builtin_s <= best.1 {
        *best = (builtin, *builtin_s);
    }
    Ok(())
}

/// A candidate's outcome from its output `out` (against `reference`
/// within `bound`): wrong, or its dispatches `ds` timed, and cut short if
/// its first timed run is [`ABANDON_FACTOR`] slower than `best_s`.
pub(super) fn judge(
    gpu: &Gpu,
    ds: &[&Dispatch],
    (out, reference, bound): (&[f32], &[f32], &[f64]),
    best_s: f64,
) -> Result<Outcome> {
    let worst = worst(out, reference, bound);
    if worst > 1.0 {
        return Ok(Outcome::Wrong { worst });
    }
    let first = gpu.time(ds, 0, 1)?.min();
    if first > ABANDON_FACTOR * best_s {
        return Ok(Outcome::Abandoned(first));
    }
    Ok(Outcome::Timed(time(gpu, ds, first)?.min(first)))
}

/// The fastest of enough runs of `ds` for about [`TARGET_S`], given one
/// run's time.
pub(super) fn time(gpu: &Gpu, ds: &[&Dispatch], one_s: f64) -> Result<f64> {
    let reps = ((TARGET_S / one_s) as usize).clamp(MIN_REPS, MAX_REPS);
    Ok(gpu.time(ds, 0, reps)?.min())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `gemm::cpu::gemm`'s signature.
    type GemmFn = fn(GemmShape, &[f32], &[f32], Option<&[f32]>, &mut [f32], Epilogue, bool);

    /// Two correct GEMMs in different summation orders (f32 blocks and f64
    /// accumulation) pass; one output missing its largest product fails.
    #[test]
    fn the_bound_separates_rounding_from_errors() {
        for (trans_a, trans_b, bias, accumulate) in [
            (false, false, true, false),
            (true, false, false, true),
            (false, true, false, false),
        ] {
            let case = GemmCase::new(
                GemmShape::new(37, 29, 300, trans_a, trans_b),
                bias,
                accumulate,
            );
            let GemmShape { m, n, k, .. } = case.shape;
            let mut rng = Rng::new(SEED);
            let a = rng.vec(m * k, -1.0, 1.0);
            let b = rng.vec(k * n, -1.0, 1.0);
            let bias_v = bias.then(|| rng.vec(n, -1.0, 1.0));
            let c0 = if accumulate {
                rng.vec(m * n, -1.0, 1.0)
            } else {
                vec![0.0; m * n]
            };
            let bound = bound(case, &a, &b, bias_v.as_deref(), &c0);
            let run = |f: GemmFn| {
                let mut c = c0.clone();
                f(
                    case.shape,
                    &a,
                    &b,
                    bias_v.as_deref(),
                    &mut c,
                    Epilogue::None,
                    accumulate,
                );
                c
            };
            let fast = run(gemm::cpu::gemm);
            let exact = run(gemm::cpu::gemm_naive);
            let w = worst(&fast, &exact, &bound);
            assert!(
                w <= 1.0,
                "{case:?}: rounding alone reached {w} of the bound"
            );
            // Output (0, 0) without its largest product: op(A)[0][p] is
            // a[p·m] or a[p], op(B)[p][0] is b[p] or b[p·n].
            let term = |p: usize| {
                let x = if trans_a { a[p * m] } else { a[p] };
                let y = if trans_b { b[p] } else { b[p * n] };
                x * y
            };
            let largest = (0..k)
                .map(term)
                .max_by(|x, y| x.abs().total_cmp(&y.abs()))
                .unwrap();
            let mut wrong = fast.clone();
            wrong[0] -= largest;
            let w = worst(&wrong, &exact, &bound);
            assert!(
                w > 1.0,
                "{case:?}: a dropped product {largest} passed ({w})"
            );
            wrong[0] = f32::NAN;
            assert_eq!(worst(&wrong, &exact, &bound), f64::INFINITY);
        }
    }
}
