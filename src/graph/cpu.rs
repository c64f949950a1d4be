//! The CPU backend: runs a lowered program instruction by instruction with
//! the plain-Rust references of the kernels. It is the oracle the GPU is
//! checked against, whole steps at a time, and the fallback where there is
//! no GPU: operands are borrowed in place (parameters, gradients, state, and
//! temporaries allocated once per program in a [`CpuRun`]), and the kernels
//! run on all threads (`crate::par`) with results independent of the count.

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
    pub seed: u64,
    /// Adam's t (from 1) and the dropout RNG step.
    pub step: u64,
    /// Adam's hyperparameters.
    pub adam: AdamConfig,
}

/// Tensor contents after a run, for the host to read (logits,
/// probabilities); also the temporaries a run writes, allocated once and
/// reused by every run of the same program ([`run_in`]).
pub struct CpuRun {
    f32s: Vec<Vec<f32>>,
    u32s: Vec<Vec<u32>>,
}

impl CpuRun {
    /// Zeroed temporaries for `p`.
    pub fn new(p: &Program) -> Self {
        let temp = |t: &super::program::TensorInfo, d: DType| {
            if t.home == Home::Temp && t.dtype == d {
                t.len
            } else {
                0
            }
        };
        CpuRun {
            f32s: p
                .tensors
                .iter()
                .map(|t| vec![0.0; temp(t, DType::F32)])
                .collect(),
            u32s: p
                .tensors
                .iter()
                .map(|t| vec![0; temp(t, DType::U32)])
                .collect(),
        }
    }

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

/// Raw views of every f32 buffer a program touches. One instruction at a
/// time borrows operands from it through a [`Scope`], which checks that
/// no written range overlaps another borrowed range.
struct Env<'a> {
    p: &'a Program,
    /// params, grads, state, Adam's m and v; then one per tensor (temporaries).
    bufs: Vec<(*mut f32, usize)>,
    u32s: &'a mut [Vec<u32>],
    _borrow: std::marker::PhantomData<&'a mut [f32]>,
}

/// Where the temporaries start in `Env::bufs`.
const TEMPS: usize = 5;

/// The operands of one instruction.
struct Scope<'s> {
    p: &'s Program,
    bufs: &'s [(*mut f32, usize)],
    claims: std::cell::RefCell<Vec<(usize, usize, usize, bool)>>,
}

impl<'s> Scope<'s> {
    fn locate(&self, t: TensorId) -> (usize, usize, usize) {
        let info = &self.p.tensors[t];
        let (buf, off) = match info.home {
            Home::Param(o) => (0, o),
            Home::Grad(o) => (1, o),
            Home::State(o) => (2, o),
            Home::Temp => (TEMPS + t, 0),
            Home::Metrics => unreachable!("metrics are u32 words"),
        };
        assert!(
            off + info.len <= self.bufs[buf].1,
            "tensor {} out of its buffer",
            info.name
        );
        (buf, off, off + info.len)
    }

    fn claim(&self, t: TensorId, write: bool) -> (*mut f32, usize) {
        let (buf, lo, hi) = self.locate(t);
        let mut claims = self.claims.borrow_mut();
        for &(b, l, h, w) in claims.iter() {
            assert!(
                b != buf || h <= lo || hi <= l || !(w || write),
                "tensor {} is written while borrowed",
                self.p.tensors[t].name
            );
        }
        claims.push((buf, lo, hi, write));
        // SAFETY: in bounds (checked in `locate`).
        (unsafe { self.bufs[buf].0.add(lo) }, hi - lo)
    }

    /// Tensor `t`, read.
    fn r(&self, t: TensorId) -> &'s [f32] {
        let (ptr, len) = self.claim(t, false);
        // SAFETY: the buffers outlive the scope (`Env` borrows them for
        // 'a), and `claim` rejects any overlap with a range written in
        // this scope.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }

    /// Tensor `t`, written (or read and written).
    #[allow(clippy::mut_from_ref)]
    fn w(&self, t: TensorId) -> &'s mut [f32] {
        let (ptr, len) = self.claim(t, true);
        // SAFETY: as in `r`; a written range overlaps nothing else borrowed.
        unsafe { std::slice::from_raw_parts_mut(ptr, len) }
    }
}

impl<'a> Env<'a> {
    fn new(
        p: &'a Program,
        st: &'a mut CpuState,
        f32s: &'a mut [Vec<f32>],
        u32s: &'a mut [Vec<u32>],
    ) -> Self {
        let mut bufs = vec![
            (st.params.as_mut_ptr(), st.params.len()),
            (st.grads.as_mut_ptr(), st.grads.len()),
            (st.state.as_mut_ptr(), st.state.len()),
            (st.m.as_mut_ptr(), st.m.len()),
            (st.v.as_mut_ptr(), st.v.len()),
        ];
        bufs.extend(f32s.iter_mut().map(|v| (v.as_mut_ptr(), v.len())));
        Env {
            p,
            bufs,
            u32s,
            _borrow: std::marker::PhantomData,
        }
    }

    /// The operands of the next instruction, and the u32 tensors.
    fn scope(&mut self) -> (Scope<'_>, &mut [Vec<u32>]) {
        let s = Scope {
            p: self.p,
            bufs: &self.bufs,
            claims: std::cell::RefCell::new(Vec::with_capacity(8)),
        };
        (s, &mut *self.u32s)
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
    let mut out = CpuRun::new(p);
    run_in(p, st, inp, metrics, n, &mut out, &mut |_| {});
    out
}

/// Runs instructions 0..n of `p` in the temporaries of `out` (made by
/// `CpuRun::new(p)`), calling `mark(i)` just before instruction i and
/// `mark(n)` after the last: the time between two calls is one
/// instruction's (what `gdl-gpu profile` measures).
pub fn run_in(
    p: &Program,
    st: &mut CpuState,
    inp: &StepInputs,
    metrics: &mut [u32; 4],
    n: usize,
    out: &mut CpuRun,
    mark: &mut dyn FnMut(usize),
) {
    assert_eq!(out.f32s.len(), p.tensors.len(), "CpuRun of another program");
    let _ftz = crate::par::Ftz::on();
    let mut env = Env::new(p, st, &mut out.f32s, &mut out.u32s);
    for (i, inst) in p.insts[..n].iter().enumerate() {
        mark(i);
        if let Inst::Adam = inst {
            let b = &env.bufs;
            // SAFETY: five distinct vectors of the state, borrowed by no
            // scope (each instruction's ended with it).
            let part = |k: usize| unsafe { std::slice::from_raw_parts_mut(b[k].0, b[k].1) };
            let (params, grads, m, v) = (part(0), part(1), part(3), part(4));
            adam::cpu::update(&inp.adam, inp.step.max(1), params, grads, m, v);
            continue;
        }
        let (s, u32s) = env.scope();
        exec(inst, &s, u32s, inp, metrics);
    }
    mark(n);
    debug_assert!(p
        .tensors
        .iter()
        .all(|t| t.dtype == DType::F32 || t.dtype == DType::U32));
}

/// One instruction, operands borrowed from `s`.
fn exec(inst: &Inst, s: &Scope, u32s: &mut [Vec<u32>], inp: &StepInputs, metrics: &mut [u32; 4]) {
    match *inst {
        Inst::Gather { x, labels } => {
            let b = s.p.batch;
            gather::cpu::gather_into(
                inp.pixels,
                inp.labels,
                inp.hwc,
                &inp.indices[inp.batch_base..inp.batch_base + b],
                s.w(x),
                &mut u32s[labels],
            );
        }
        Inst::Gemm {
            shape,
            a,
            b,
            bias,
            c,
            epilogue,
            accumulate,
            db,
        } => {
            let (av, bv) = (s.r(a), s.r(b));
            let biasv = bias.map(|t| s.r(t));
            gemm::cpu::gemm(shape, av, bv, biasv, s.w(c), epilogue, accumulate);
            if let Some(db) = db {
                assert!(!shape.trans_b, "db sums op(b) stored [k, n]");
                reduce::cpu::column_sums_into(shape.k, shape.n, bv, s.w(db));
            }
        }
        Inst::ConvForward {
            geom,
            x,
            cols,
            w,
            bias,
            y,
            epilogue,
        } => conv::cpu::forward_into(
            &geom,
            s.r(x),
            s.w(cols),
            s.r(w),
            bias.map(|t| s.r(t)),
            s.w(y),
            epilogue,
        ),
        Inst::ConvWeightGrad {
            geom,
            cols,
            dy,
            dw,
            db,
            ..
        } => {
            conv::cpu::weight_grad_from_cols(&geom, s.r(cols), s.r(dy), s.w(dw));
            if let Some(db) = db {
                reduce::cpu::column_sums_into(geom.col_rows(), geom.out_c, s.r(dy), s.w(db));
            }
        }
        Inst::ConvInputGrad {
            geom,
            dy,
            w,
            dcols,
            dx,
        } => conv::cpu::input_grad_into(&geom, s.r(dy), s.r(w), s.w(dcols), s.w(dx)),
        Inst::BnTrain {
            shape,
            x,
            y,
            post,
            bn,
            momentum,
            eps,
        } => {
            let stats = batchnorm::cpu::BnStats {
                moving_mean: s.w(bn.moving_mean),
                moving_var: s.w(bn.moving_var),
                momentum,
                eps,
                mean: s.w(bn.save_mean),
                inv_std: s.w(bn.save_inv_std),
                var: None,
            };
            let (xv, g, b) = (s.r(x), s.r(bn.gamma), s.r(bn.beta));
            let yv = s.w(y);
            batchnorm::cpu::forward_train_into(shape, xv, g, b, stats, yv);
            batchnorm::cpu::post_into(post, (inp.seed, inp.step as u32), yv);
        }
        Inst::BnInfer {
            shape,
            x,
            y,
            act,
            bn,
            eps,
        } => {
            let yv = s.w(y);
            batchnorm::cpu::forward_infer_into(
                shape,
                s.r(x),
                s.r(bn.gamma),
                s.r(bn.beta),
                s.r(bn.moving_mean),
                s.r(bn.moving_var),
                eps,
                yv,
            );
            let post = batchnorm::BnPost { act, dropout: None };
            batchnorm::cpu::post_into(post, (0, 0), yv);
        }
        Inst::BnBackward {
            shape,
            x,
            dy,
            post,
            bn,
            dx,
            dgamma,
            dbeta,
        } => {
            let p = batchnorm::cpu::BnChannels {
                gamma: s.r(bn.gamma),
                beta: s.r(bn.beta),
                mean: s.r(bn.save_mean),
                inv_std: s.r(bn.save_inv_std),
            };
            let rng = (inp.seed, inp.step as u32);
            let out = (s.w(dx), s.w(dgamma), s.w(dbeta));
            batchnorm::cpu::backward_post_into(shape, (s.r(x), s.r(dy)), p, (post, rng), out)
        }
        Inst::Act { n, kind, x, y } => {
            elementwise::cpu::forward_into(kind, &s.r(x)[..n], &mut s.w(y)[..n])
        }
        Inst::ActBackward { n, kind, x, dy, dx } => {
            elementwise::cpu::backward_into(kind, &s.r(x)[..n], &s.r(dy)[..n], &mut s.w(dx)[..n])
        }
        Inst::Dropout {
            n,
            rate,
            stream,
            x,
            y,
        } => dropout::cpu::apply_into(
            inp.seed,
            inp.step as u32,
            stream,
            rate,
            &s.r(x)[..n],
            &mut s.w(y)[..n],
        ),
        Inst::DropoutBackward {
            n,
            rate,
            stream,
            dy,
            dx,
        } => dropout::cpu::apply_into(
            inp.seed,
            inp.step as u32,
            stream,
            rate,
            &s.r(dy)[..n],
            &mut s.w(dx)[..n],
        ),
        Inst::Pool { geom, kind, x, y } => match kind {
            PoolKind::Max => pool::cpu::max_forward_into(&geom, s.r(x), s.w(y)),
            PoolKind::Average => pool::cpu::avg_forward_into(&geom, s.r(x), s.w(y)),
        },
        Inst::PoolBackward {
            geom,
            kind,
            x,
            dy,
            dx,
        } => match kind {
            PoolKind::Max => pool::cpu::max_backward_into(&geom, s.r(x), s.r(dy), s.w(dx)),
            PoolKind::Average => pool::cpu::avg_backward_into(&geom, s.r(dy), s.w(dx)),
        },
        Inst::Add { a, b, c, .. } => add::cpu::add_into(s.r(a), s.r(b), s.w(c)),
        Inst::Accumulate { src, acc, .. } => add::cpu::accumulate(s.r(src), s.w(acc)),
        Inst::CopyColumns {
            rows,
            width,
            src,
            src_stride,
            src_offset,
            dst,
            dst_stride,
            dst_offset,
        } => concat::cpu::copy_columns(
            rows,
            width,
            s.r(src),
            src_stride,
            src_offset,
            s.w(dst),
            dst_stride,
            dst_offset,
        ),
        Inst::SoftmaxXent {
            batch,
            classes,
            logits,
            labels,
            dlogits,
            ..
        } => {
            let before = softmax_xent::Metrics {
                loss_sum: f32::from_bits(metrics[0]),
                correct: metrics[1],
                examples: metrics[2],
                _pad: 0,
            };
            let (l, d) = (s.r(logits), dlogits.map(|t| s.w(t)));
            let after =
                softmax_xent::cpu::xent_metrics((batch, classes), l, &u32s[labels], before, d);
            *metrics = [after.loss_sum.to_bits(), after.correct, after.examples, 0];
        }
        Inst::Softmax {
            batch,
            classes,
            logits,
            probs,
        } => {
            let v = softmax_xent::cpu::softmax(batch, classes, s.r(logits));
            s.w(probs).copy_from_slice(&v);
        }
        Inst::Adam => unreachable!("run_in updates the state itself"),
    }
}
