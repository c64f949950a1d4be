//! The instruction set a graph is lowered to (`lower`): kernel-level
//! instructions over numbered tensors. Both backends run the very same
//! program, so a GPU step and a CPU step can be compared instruction by
//! instruction.

use super::ops::PoolKind;
use super::origin::Origin;
use crate::kernels::batchnorm::BnShape;
use crate::kernels::conv::Conv2dGeom;
use crate::kernels::elementwise::ActKind;
use crate::kernels::gemm::{Epilogue, GemmShape};
use crate::kernels::pool::Pool2dGeom;

pub type TensorId = usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    U32,
}

/// Where a tensor's storage comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Home {
    /// A trainable parameter at this element offset of the packed buffer.
    Param(usize),
    /// Its gradient, at the same offset of the gradient buffer.
    Grad(usize),
    /// Non-trainable state (moving statistics) at this offset.
    State(usize),
    /// Running loss/accuracy sums, kept across steps: [loss_sum f32, correct, examples, 0].
    Metrics,
    /// A temporary, given a buffer by the planner.
    Temp,
}

#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub name: String,
    pub len: usize,
    pub dtype: DType,
    pub home: Home,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Forward in training mode, loss, backward, Adam.
    Train,
    /// Forward in inference mode and the loss.
    Eval,
    /// Forward in inference mode and the class probabilities.
    Predict,
}

#[derive(Clone, Debug)]
pub enum Inst {
    /// x ← dataset images indices[base..base+batch] / 255 (NHWC), labels.
    Gather { x: TensorId, labels: TensorId },
    /// c = op(a)·op(b) (+ bias, then the epilogue), or c += op(a)·op(b).
    Gemm {
        shape: GemmShape,
        a: TensorId,
        b: TensorId,
        bias: Option<TensorId>,
        c: TensorId,
        epilogue: Epilogue,
        accumulate: bool,
    },
    Im2col {
        geom: Conv2dGeom,
        x: TensorId,
        cols: TensorId,
    },
    Col2im {
        geom: Conv2dGeom,
        dcols: TensorId,
        dx: TensorId,
    },
    BnTrain {
        shape: BnShape,
        x: TensorId,
        y: TensorId,
        bn: BnTensors,
        momentum: f32,
        eps: f32,
    },
    BnInfer {
        shape: BnShape,
        x: TensorId,
        y: TensorId,
        bn: BnTensors,
        eps: f32,
    },
    BnBackward {
        shape: BnShape,
        x: TensorId,
        dy: TensorId,
        bn: BnTensors,
        dx: TensorId,
        dgamma: TensorId,
        dbeta: TensorId,
    },
    Act {
        n: usize,
        kind: ActKind,
        x: TensorId,
        y: TensorId,
    },
    /// dx = dy · f'(x).
    ActBackward {
        n: usize,
        kind: ActKind,
        x: TensorId,
        dy: TensorId,
        dx: TensorId,
    },
    Dropout {
        n: usize,
        rate: f32,
        /// The layer's own random stream.
        stream: u32,
        x: TensorId,
        y: TensorId,
    },
    DropoutBackward {
        n: usize,
        rate: f32,
        stream: u32,
        dy: TensorId,
        dx: TensorId,
    },
    ColumnSums {
        rows: usize,
        cols: usize,
        dy: TensorId,
        db: TensorId,
    },
    Pool {
        geom: Pool2dGeom,
        kind: PoolKind,
        x: TensorId,
        y: TensorId,
    },
    /// dx from dy; max pooling also reads the forward input x.
    PoolBackward {
        geom: Pool2dGeom,
        kind: PoolKind,
        x: TensorId,
        dy: TensorId,
        dx: TensorId,
    },
    /// c = a + b.
    Add {
        n: usize,
        a: TensorId,
        b: TensorId,
        c: TensorId,
    },
    /// acc += src.
    Accumulate {
        n: usize,
        src: TensorId,
        acc: TensorId,
    },
    /// A rows × width block between row-major matrices (channel concatenation).
    CopyColumns {
        rows: usize,
        width: usize,
        src: TensorId,
        src_stride: usize,
        src_offset: usize,
        dst: TensorId,
        dst_stride: usize,
        dst_offset: usize,
    },
    SoftmaxXent {
        batch: usize,
        classes: usize,
        logits: TensorId,
        labels: TensorId,
        loss: TensorId,
        correct: TensorId,
        dlogits: Option<TensorId>,
    },
    Softmax {
        batch: usize,
        classes: usize,
        logits: TensorId,
        probs: TensorId,
    },
    Metrics {
        batch: usize,
        loss: TensorId,
        correct: TensorId,
        metrics: TensorId,
    },
    /// One Adam update over every trainable parameter.
    Adam,
}

#[derive(Clone, Copy, Debug)]
pub struct BnTensors {
    pub gamma: TensorId,
    pub beta: TensorId,
    pub moving_mean: TensorId,
    pub moving_var: TensorId,
    pub save_mean: TensorId,
    pub save_inv_std: TensorId,
}

impl Inst {
    /// Tensors read and tensors written, for buffer planning.
    pub fn uses(&self) -> Vec<TensorId> {
        use Inst::*;
        match self {
            Gather { x, labels } => vec![*x, *labels],
            Gemm { a, b, bias, c, .. } => {
                let mut v = vec![*a, *b, *c];
                v.extend(bias);
                v
            }
            Im2col { x, cols, .. } => vec![*x, *cols],
            Col2im { dcols, dx, .. } => vec![*dcols, *dx],
            BnTrain { x, y, bn, .. } | BnInfer { x, y, bn, .. } => {
                vec![*x, *y, bn.save_mean, bn.save_inv_std]
            }
            BnBackward { x, dy, bn, dx, .. } => vec![*x, *dy, *dx, bn.save_mean, bn.save_inv_std],
            Act { x, y, .. } => vec![*x, *y],
            ActBackward { x, dy, dx, .. } => vec![*x, *dy, *dx],
            Dropout { x, y, .. } => vec![*x, *y],
            DropoutBackward { dy, dx, .. } => vec![*dy, *dx],
            ColumnSums { dy, db, .. } => vec![*dy, *db],
            Pool { x, y, .. } => vec![*x, *y],
            PoolBackward { x, dy, dx, .. } => vec![*x, *dy, *dx],
            Add { a, b, c, .. } => vec![*a, *b, *c],
            Accumulate { src, acc, .. } => vec![*src, *acc],
            CopyColumns { src, dst, .. } => vec![*src, *dst],
            SoftmaxXent {
                logits,
                labels,
                loss,
                correct,
                dlogits,
                ..
            } => {
                let mut v = vec![*logits, *labels, *loss, *correct];
                v.extend(dlogits);
                v
            }
            Softmax { logits, probs, .. } => vec![*logits, *probs],
            Metrics { loss, correct, .. } => vec![*loss, *correct],
            Adam => Vec::new(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Program {
    pub mode: Mode,
    pub batch: usize,
    pub tensors: Vec<TensorInfo>,
    pub insts: Vec<Inst>,
    pub input: TensorId,
    pub labels: TensorId,
    pub metrics: TensorId,
    /// Class probabilities, in `Predict` mode.
    pub probs: Option<TensorId>,
    pub logits: TensorId,
    /// The layer and phase of each instruction (`origin[i]` is `insts[i]`'s).
    pub origin: Vec<Origin>,
}
