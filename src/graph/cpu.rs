//! The CPU backend: runs a lowered program instruction by instruction with
//! the plain-Rust references of the kernels. It is the oracle the GPU is
//! checked against, whole steps at a time; clarity beats speed here.

use super::ops::PoolKind;
use super::params::ParamLayout;
use super::program::{DType, Home, Inst, Program, TensorId};
use crate::kernels::adam::{self, AdamConfig};
use crate::kernels::{
    add, batchnorm, concat, conv, dropout, elementwise, gather, gemm, pool, reduce, softmax_xent,
};

/// Parameters and optimizer state on the host, packed as `ParamLayout` says.
#[derive(Clone, Debug)]
pub struct CpuState {
    /// Where each parameter and state array lives in the packed vectors.
    pub layout: ParamLayout,
    /// Trainable parameters, packed.
    pub params: Vec<f32>,
    /// Their gradients, same layout.
    pub grads: Vec<f32>,
    /// Adam's first moments, same layout.
    pub m: Vec<f32>,
    /// Adam's second moments, same layout.
    pub v: Vec<f32>,
    /// Non-trainable state (moving statistics), packed.
    pub state: Vec<f32>,
}

impl CpuState {
    /// From packed parameters and state; gradients and Adam moments start at 0.
    pub fn new(layout: &ParamLayout, trainable: Vec<f32>, state: Vec<f32>) -> Self {
        let n = layout.trainable_len;
        CpuState {
            layout: layout.clone(),
            params: trainable,
            grads: vec![0.0; n],
            m: vec![0.0; n],
            v: vec![0.0; n],
            state,
        }
    }
}

/// What one run of a program needs from outside.
pub struct StepInputs<'a> {
    /// CHW u8 images and labels of the split being read.
    pub pixels: &'a [u8],
    /// The split's labels, one per image.
    pub labels: &'a [u8],
    /// (height, width, channels) of each image.
    pub hwc: (usize, usize, usize),
    /// The split's example order: the batch is `indices[batch_base..batch_base + batch]`.
    pub indices: &'a [u32],
    /// First position of this batch in `indices`.
    pub batch_base: usize,
    /// Dropout seed.
    pub seed: u32,
    /// Adam's t (from 1) and the dropout RNG step.
    pub step: u64,
    /// Adam's hyperparameters.
    pub adam: AdamConfig,
}

/// Tensor contents after a run, for the host to read (logits, probabilities).
pub struct CpuRun {
    f32s: Vec<Vec<f32>>,
}

impl CpuRun {
    /// The contents of tensor `t` as this run left it (temporaries included).
    pub fn tensor(&self, t: TensorId) -> &[f32] {
        &self.f32s[t]
    }

    /// Any f32 tensor: temporaries from this run, the rest from the state.
    pub fn value(&self, p: &Program, st: &CpuState, t: TensorId) -> Vec<f32> {
        let info = &p.tensors[t];
        let r = |o: usize| o..o + info.len;
        match info.home {
            Home::Param(o) => st.params[r(o)].to_vec(),
            Home::Grad(o) => st.grads[r(o)].to_vec(),
            Home::State(o) => st.state[r(o)].to_vec(),
            Home::Temp => self.f32s[t].clone(),
            Home::Metrics => Vec::new(),
        }
    }
}

struct Env<'a> {
    p: &'a Program,
    st: &'a mut CpuState,
    f32s: Vec<Vec<f32>>,
    u32s: Vec<Vec<u32>>,
    metrics: &'a mut [u32; 4],
}

impl Env<'_> {
    fn get(&self, t: TensorId) -> Vec<f32> {
        let info = &self.p.tensors[t];
        let r = |o: usize| o..o + info.len;
        match info.home {
            Home::Param(o) => self.st.params[r(o)].to_vec(),
            Home::Grad(o) => self.st.grads[r(o)].to_vec(),
            Home::State(o) => self.st.state[r(o)].to_vec(),
            Home::Temp => self.f32s[t].clone(),
            Home::Metrics => unreachable!("metrics are u32 words"),
        }
    }

    fn set(&mut self, t: TensorId, v: Vec<f32>) {
        let info = &self.p.tensors[t];
        assert_eq!(v.len(), info.len, "tensor {} length", info.name);
        let r = |o: usize| o..o + info.len;
        match info.home {
            Home::Param(o) => self.st.params[r(o)].copy_from_slice(&v),
            Home::Grad(o) => self.st.grads[r(o)].copy_from_slice(&v),
            Home::State(o) => self.st.state[r(o)].copy_from_slice(&v),
            Home::Temp => self.f32s[t] = v,
            Home::Metrics => unreachable!("metrics are u32 words"),
        }
    }
}

/// Runs `p` once. `metrics` accumulates [loss_sum f32 bits, correct, examples, 0].
pub fn run(p: &Program, st: &mut CpuState, inp: &StepInputs, metrics: &mut [u32; 4]) -> CpuRun {
    run_prefix(p, st, inp, metrics, p.insts.len())
}

/// Runs instructions 0..n of `p` (see `GpuProgram::record_prefix`).
pub fn run_prefix(
    p: &Program,
    st: &mut CpuState,
    inp: &StepInputs,
    metrics: &mut [u32; 4],
    n: usize,
) -> CpuRun {
    run_observed(p, st, inp, metrics, n, &mut |_| {})
}

/// [`run_prefix`], calling `mark(i)` just before instruction i and
/// `mark(n)` after the last: the time between two calls is one
/// instruction's (what `gdl-gpu profile` measures).
pub fn run_observed(
    p: &Program,
    st: &mut CpuState,
    inp: &StepInputs,
    metrics: &mut [u32; 4],
    n: usize,
    mark: &mut dyn FnMut(usize),
) -> CpuRun {
    let nt = p.tensors.len();
    let mut env = Env {
        p,
        st,
        f32s: vec![Vec::new(); nt],
        u32s: vec![Vec::new(); nt],
        metrics,
    };
    for (i, inst) in p.insts[..n].iter().enumerate() {
        mark(i);
        match *inst {
            Inst::Gather { x, labels } => {
                let (xs, ls) = gather::cpu::gather(
                    inp.pixels,
                    inp.labels,
                    inp.hwc,
                    inp.indices,
                    inp.batch_base,
                    p.batch,
                );
                env.set(x, xs);
                env.u32s[labels] = ls;
            }
            Inst::Gemm {
                shape,
                a,
                b,
                bias,
                c,
                epilogue,
                accumulate,
            } => {
                let (av, bv) = (env.get(a), env.get(b));
                let biasv = bias.map(|t| env.get(t));
                let mut cv = if accumulate {
                    env.get(c)
                } else {
                    vec![0.0; shape.m * shape.n]
                };
                gemm::cpu::gemm(
                    shape,
                    &av,
                    &bv,
                    biasv.as_deref(),
                    &mut cv,
                    epilogue,
                    accumulate,
                );
                env.set(c, cv);
            }
            Inst::Im2col { geom, x, cols } => {
                let v = conv::cpu::im2col(&geom, &env.get(x));
                env.set(cols, v);
            }
            Inst::Col2im { geom, dcols, dx } => {
                let v = conv::cpu::col2im(&geom, &env.get(dcols));
                env.set(dx, v);
            }
            Inst::BnTrain {
                shape,
                x,
                y,
                bn,
                momentum,
                eps,
            } => {
                let (mut mm, mut mv) = (env.get(bn.moving_mean), env.get(bn.moving_var));
                let out = batchnorm::cpu::forward_train(
                    shape,
                    &env.get(x),
                    &env.get(bn.gamma),
                    &env.get(bn.beta),
                    &mut mm,
                    &mut mv,
                    momentum,
                    eps,
                );
                env.set(y, out.y);
                env.set(bn.moving_mean, mm);
                env.set(bn.moving_var, mv);
                env.set(bn.save_mean, out.mean);
                env.set(bn.save_inv_std, out.inv_std);
            }
            Inst::BnInfer {
                shape,
                x,
                y,
                bn,
                eps,
            } => {
                let yv = batchnorm::cpu::forward_infer(
                    shape,
                    &env.get(x),
                    &env.get(bn.gamma),
                    &env.get(bn.beta),
                    &env.get(bn.moving_mean),
                    &env.get(bn.moving_var),
                    eps,
                );
                env.set(y, yv);
            }
            Inst::BnBackward {
                shape,
                x,
                dy,
                bn,
                dx,
                dgamma,
                dbeta,
            } => {
                let (dxv, dg, db) = batchnorm::cpu::backward(
                    shape,
                    &env.get(x),
                    &env.get(dy),
                    &env.get(bn.gamma),
                    &env.get(bn.save_mean),
                    &env.get(bn.save_inv_std),
                );
                env.set(dx, dxv);
                env.set(dgamma, dg);
                env.set(dbeta, db);
            }
            Inst::Act { n, kind, x, y } => {
                let xv = env.get(x);
                env.set(y, elementwise::cpu::forward(kind, &xv[..n]));
            }
            Inst::ActBackward { n, kind, x, dy, dx } => {
                let (xv, g) = (env.get(x), env.get(dy));
                env.set(dx, elementwise::cpu::backward(kind, &xv[..n], &g[..n]));
            }
            Inst::Dropout {
                n,
                rate,
                stream,
                x,
                y,
            } => {
                let xv = env.get(x);
                let step = inp.step as u32;
                env.set(
                    y,
                    dropout::cpu::forward(inp.seed, step, stream, rate, &xv[..n]),
                );
            }
            Inst::DropoutBackward {
                n,
                rate,
                stream,
                dy,
                dx,
            } => {
                let g = env.get(dy);
                let step = inp.step as u32;
                env.set(
                    dx,
                    dropout::cpu::backward(inp.seed, step, stream, rate, &g[..n]),
                );
            }
            Inst::Pool { geom, kind, x, y } => {
                let xv = env.get(x);
                env.set(
                    y,
                    match kind {
                        PoolKind::Max => pool::cpu::max_forward(&geom, &xv),
                        PoolKind::Average => pool::cpu::avg_forward(&geom, &xv),
                    },
                );
            }
            Inst::PoolBackward {
                geom,
                kind,
                x,
                dy,
                dx,
            } => {
                let g = env.get(dy);
                let v = match kind {
                    PoolKind::Max => pool::cpu::max_backward(&geom, &env.get(x), &g),
                    PoolKind::Average => pool::cpu::avg_backward(&geom, &g),
                };
                env.set(dx, v);
            }
            Inst::Add { a, b, c, .. } => {
                let v = add::cpu::add(&env.get(a), &env.get(b));
                env.set(c, v);
            }
            Inst::Accumulate { src, acc, .. } => {
                let mut v = env.get(acc);
                add::cpu::accumulate(&env.get(src), &mut v);
                env.set(acc, v);
            }
            Inst::CopyColumns {
                rows,
                width,
                src,
                src_stride,
                src_offset,
                dst,
                dst_stride,
                dst_offset,
            } => {
                // The first block written into a fresh temporary starts it.
                let mut v = env.get(dst);
                v.resize(p.tensors[dst].len, 0.0);
                concat::cpu::copy_columns(
                    rows,
                    width,
                    &env.get(src),
                    src_stride,
                    src_offset,
                    &mut v,
                    dst_stride,
                    dst_offset,
                );
                env.set(dst, v);
            }
            Inst::ColumnSums { rows, cols, dy, db } => {
                let v = reduce::cpu::column_sums(rows, cols, &env.get(dy));
                env.set(db, v);
            }
            Inst::SoftmaxXent {
                batch,
                classes,
                logits,
                labels,
                loss,
                correct,
                dlogits,
            } => {
                let lv = env.get(logits);
                let labs = env.u32s[labels].clone();
                let (l, c, d) = softmax_xent::cpu::forward_backward(batch, classes, &lv, &labs);
                env.set(loss, l);
                env.u32s[correct] = c;
                if let Some(t) = dlogits {
                    env.set(t, d);
                }
            }
            Inst::Softmax {
                batch,
                classes,
                logits,
                probs,
            } => {
                let v = softmax_xent::cpu::softmax(batch, classes, &env.get(logits));
                env.set(probs, v);
            }
            Inst::Metrics { loss, correct, .. } => {
                let before = softmax_xent::Metrics {
                    loss_sum: f32::from_bits(env.metrics[0]),
                    correct: env.metrics[1],
                    examples: env.metrics[2],
                    _pad: 0,
                };
                let after = softmax_xent::cpu::accumulate_metrics(
                    before,
                    &env.get(loss),
                    &env.u32s[correct],
                );
                *env.metrics = [after.loss_sum.to_bits(), after.correct, after.examples, 0];
            }
            Inst::Adam => {
                let st = &mut *env.st;
                adam::cpu::update(
                    &inp.adam,
                    inp.step.max(1),
                    &mut st.params,
                    &st.grads,
                    &mut st.m,
                    &mut st.v,
                );
            }
        }
    }
    mark(n);
    debug_assert!(p
        .tensors
        .iter()
        .all(|t| t.dtype == DType::F32 || t.dtype == DType::U32));
    CpuRun { f32s: env.f32s }
}
