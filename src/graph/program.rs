//! The instruction set a graph is lowered to (`lower`): kernel-level
//! instructions over numbered tensors. Both backends run the very same
//! program, so a GPU step and a CPU step can be compared instruction by
//! instruction.

use super::ops::PoolKind;
use super::origin::Origin;
use crate::kernels::batchnorm::{BnPost, BnShape};
use crate::kernels::conv::Conv2dGeom;
use crate::kernels::elementwise::ActKind;
use crate::kernels::gemm::{Epilogue, GemmShape};
use crate::kernels::pool::Pool2dGeom;

/// Index of a tensor in `Program::tensors`.
pub type TensorId = usize;

/// Element type of a tensor (both 4 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 32-bit unsigned integer (labels, correct flags, metrics counters).
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

/// One tensor of a program.
#[derive(Clone, Debug)]
pub struct TensorInfo {
    /// Its name, for traces and errors (the layer's, with a suffix).
    pub name: String,
    /// Length in elements (all examples of the batch).
    pub len: usize,
    /// Element type.
    pub dtype: DType,
    /// Where its storage lives.
    pub home: Home,
}

/// What a program computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Forward in training mode, loss, backward, Adam.
    Train,
    /// Forward in inference mode and the loss.
    Eval,
    /// Forward in inference mode and the class probabilities.
    Predict,
}

/// One kernel-level step of a program. Tensor lengths are in elements;
/// images are NHWC and matrices row-major.
#[derive(Clone, Debug)]
pub enum Inst {
    /// x ← dataset images indices[base..base+batch] / 255 (NHWC), labels.
    Gather {
        /// The batch's images, f32 NHWC in [0, 1].
        x: TensorId,
        /// The batch's labels, u32 class indices.
        labels: TensorId,
    },
    /// c = op(a)·op(b) (+ bias, then the epilogue), or c += op(a)·op(b).
    Gemm {
        /// m, n, k and whether a and/or b are read transposed.
        shape: GemmShape,
        /// Left operand: [m, k] row-major, or [k, m] if transposed.
        a: TensorId,
        /// Right operand: [k, n] row-major, or [n, k] if transposed.
        b: TensorId,
        /// Bias added to every row, `[n]`.
        bias: Option<TensorId>,
        /// The result, [m, n] row-major.
        c: TensorId,
        /// Activation applied after the bias.
        epilogue: Epilogue,
        /// Add the product into c instead of overwriting it (no bias or epilogue then).
        accumulate: bool,
        /// Also `db[n] = Σ_k op(b)[k][n]` (the bias gradient, where op(b) is the
        /// output gradient of a weight-gradient GEMM); overwritten.
        db: Option<TensorId>,
    },
    /// y = im2col(x)·W (+ bias, then the epilogue): Conv2D's forward pass.
    /// A backend that reads x in place (implicit GEMM) leaves `cols`
    /// unwritten; otherwise it holds im2col(x) afterwards, for
    /// `ConvWeightGrad`.
    ConvForward {
        /// The convolution's shape.
        geom: Conv2dGeom,
        /// The input, NHWC.
        x: TensorId,
        /// The im2col matrix, [col_rows, col_cols], where the backend builds it.
        cols: TensorId,
        /// The kernel, [kh·kw·in_c, out_c].
        w: TensorId,
        /// Bias added to every output pixel, `[out_c]`.
        bias: Option<TensorId>,
        /// The output, NHWC.
        y: TensorId,
        /// Activation applied after the bias.
        epilogue: Epilogue,
    },
    /// dw = im2col(x)ᵀ·dy: Conv2D's weight gradient. Reads `cols` where the
    /// backend's `ConvForward` built it; otherwise x in place, or it builds
    /// `cols` itself.
    ConvWeightGrad {
        /// The convolution's shape.
        geom: Conv2dGeom,
        /// The forward pass's input, NHWC.
        x: TensorId,
        /// The forward pass's im2col matrix (see `ConvForward`).
        cols: TensorId,
        /// Gradient of the output (before the activation), NHWC.
        dy: TensorId,
        /// Gradient of the kernel, [kh·kw·in_c, out_c]; overwritten.
        dw: TensorId,
        /// Also the bias gradient, dy's column sums `[out_c]`; overwritten.
        db: Option<TensorId>,
    },
    /// dx = col2im(dy·Wᵀ): Conv2D's input gradient. A backend that gathers
    /// dy per tap (implicit GEMM) leaves `dcols` unwritten.
    ConvInputGrad {
        /// The convolution's shape.
        geom: Conv2dGeom,
        /// Gradient of the output (before the activation), NHWC.
        dy: TensorId,
        /// The kernel, [kh·kw·in_c, out_c].
        w: TensorId,
        /// Gradient of the im2col matrix, [col_rows, col_cols], where the
        /// backend builds it.
        dcols: TensorId,
        /// Gradient of the input, NHWC; overwritten.
        dx: TensorId,
    },
    /// BatchNorm forward with batch statistics, then `post` (the layers
    /// fused into it); updates the moving statistics and saves the batch
    /// mean and inverse std for backward.
    BnTrain {
        /// x viewed as [rows, channels].
        shape: BnShape,
        /// The input.
        x: TensorId,
        /// The output (after `post`), like x.
        y: TensorId,
        /// What follows the normalization in the same pass.
        post: BnPost,
        /// The layer's parameters, state and saved statistics.
        bn: BnTensors,
        /// Moving-average momentum (Keras: 0.99).
        momentum: f32,
        /// Added to the variance (Keras: 1e-3).
        eps: f32,
    },
    /// BatchNorm forward with the moving statistics, then `act`.
    BnInfer {
        /// x viewed as [rows, channels].
        shape: BnShape,
        /// The input.
        x: TensorId,
        /// The output (after `act`), like x.
        y: TensorId,
        /// A fused activation (inference has no dropout).
        act: Option<ActKind>,
        /// The layer's parameters and state (the saved statistics are not read).
        bn: BnTensors,
        /// Added to the moving variance.
        eps: f32,
    },
    /// BatchNorm backward (through `post` first) from the statistics saved
    /// by `BnTrain`.
    BnBackward {
        /// x viewed as [rows, channels].
        shape: BnShape,
        /// The forward input.
        x: TensorId,
        /// Gradient of the output (after `post`).
        dy: TensorId,
        /// The forward's `post`.
        post: BnPost,
        /// The layer's parameters and saved statistics.
        bn: BnTensors,
        /// Gradient of the input; overwritten.
        dx: TensorId,
        /// Gradient of γ, `[channels]`; overwritten.
        dgamma: TensorId,
        /// Gradient of β, `[channels]`; overwritten.
        dbeta: TensorId,
    },
    /// y = f(x) elementwise.
    Act {
        /// Elements.
        n: usize,
        /// The activation.
        kind: ActKind,
        /// The input.
        x: TensorId,
        /// The output.
        y: TensorId,
    },
    /// dx = dy · f'(x).
    ActBackward {
        /// Elements.
        n: usize,
        /// The activation.
        kind: ActKind,
        /// The forward input.
        x: TensorId,
        /// Gradient of the output.
        dy: TensorId,
        /// Gradient of the input; overwritten.
        dx: TensorId,
    },
    /// Inverted dropout: y = x·mask/(1 − rate), a fresh mask every step.
    Dropout {
        /// Elements.
        n: usize,
        /// Fraction of elements dropped, in [0, 1).
        rate: f32,
        /// The layer's own random stream.
        stream: u32,
        /// The input.
        x: TensorId,
        /// The output.
        y: TensorId,
    },
    /// dx = dy·mask/(1 − rate) with the forward step's mask.
    DropoutBackward {
        /// Elements.
        n: usize,
        /// Fraction of elements dropped, as in the forward.
        rate: f32,
        /// The forward's random stream.
        stream: u32,
        /// Gradient of the output.
        dy: TensorId,
        /// Gradient of the input; overwritten.
        dx: TensorId,
    },
    /// Max or average pooling forward.
    Pool {
        /// The pooling's shape.
        geom: Pool2dGeom,
        /// Max or average.
        kind: PoolKind,
        /// The input, NHWC.
        x: TensorId,
        /// The output, NHWC.
        y: TensorId,
    },
    /// dx from dy; max pooling also reads the forward input x.
    PoolBackward {
        /// The pooling's shape.
        geom: Pool2dGeom,
        /// Max or average.
        kind: PoolKind,
        /// The forward input, NHWC (read by max pooling only).
        x: TensorId,
        /// Gradient of the output, NHWC.
        dy: TensorId,
        /// Gradient of the input, NHWC; overwritten.
        dx: TensorId,
    },
    /// c = a + b.
    Add {
        /// Elements.
        n: usize,
        /// First addend.
        a: TensorId,
        /// Second addend.
        b: TensorId,
        /// The sum; overwritten.
        c: TensorId,
    },
    /// acc += src.
    Accumulate {
        /// Elements.
        n: usize,
        /// What is added.
        src: TensorId,
        /// The accumulator, updated in place.
        acc: TensorId,
    },
    /// A rows × width block between row-major matrices (channel concatenation).
    CopyColumns {
        /// Rows copied.
        rows: usize,
        /// Elements copied per row.
        width: usize,
        /// The source matrix.
        src: TensorId,
        /// Elements per source row.
        src_stride: usize,
        /// Element offset of the block within each source row.
        src_offset: usize,
        /// The destination matrix; elements outside the block are kept.
        dst: TensorId,
        /// Elements per destination row.
        dst_stride: usize,
        /// Element offset of the block within each destination row.
        dst_offset: usize,
    },
    /// Fused softmax and categorical cross-entropy per example, its sums
    /// added to the running metrics, with the gradient in training.
    SoftmaxXent {
        /// Examples.
        batch: usize,
        /// Classes per example.
        classes: usize,
        /// The logits, [batch, classes] row-major.
        logits: TensorId,
        /// Labels, u32 `[batch]`.
        labels: TensorId,
        /// The running metrics, `Home::Metrics`: the batch's loss sum,
        /// correct count and example count are added.
        metrics: TensorId,
        /// Gradient of the logits, (softmax − onehot)/batch; overwritten. `None` in evaluation.
        dlogits: Option<TensorId>,
    },
    /// Class probabilities for prediction.
    Softmax {
        /// Examples.
        batch: usize,
        /// Classes per example.
        classes: usize,
        /// The logits, [batch, classes] row-major.
        logits: TensorId,
        /// The probabilities, like logits; overwritten.
        probs: TensorId,
    },
    /// One Adam update over every trainable parameter.
    Adam,
}

/// The tensors of one BatchNorm layer, each `[channels]`.
#[derive(Clone, Copy, Debug)]
pub struct BnTensors {
    /// Scale γ (a parameter).
    pub gamma: TensorId,
    /// Offset β (a parameter).
    pub beta: TensorId,
    /// Moving mean (state).
    pub moving_mean: TensorId,
    /// Moving variance (state).
    pub moving_var: TensorId,
    /// The batch mean, saved by `BnTrain` for backward.
    pub save_mean: TensorId,
    /// The batch's 1/√(σ² + ε), saved by `BnTrain` for backward.
    pub save_inv_std: TensorId,
}

impl Inst {
    /// The tensor a backend may leave unwritten (see `ConvForward`,
    /// `ConvWeightGrad` and `ConvInputGrad`): its contents are the backend's
    /// own business.
    pub fn scratch(&self) -> Option<TensorId> {
        match *self {
            Inst::ConvForward { cols, .. } | Inst::ConvWeightGrad { cols, .. } => Some(cols),
            Inst::ConvInputGrad { dcols, .. } => Some(dcols),
            _ => None,
        }
    }

    /// Tensors read and tensors written, for buffer planning.
    pub fn uses(&self) -> Vec<TensorId> {
        use Inst::*;
        match self {
            Gather { x, labels } => vec![*x, *labels],
            Gemm {
                a, b, bias, c, db, ..
            } => {
                let mut v = vec![*a, *b, *c];
                v.extend(bias);
                v.extend(db);
                v
            }
            ConvForward {
                x,
                cols,
                w,
                bias,
                y,
                ..
            } => {
                let mut v = vec![*x, *cols, *w, *y];
                v.extend(bias);
                v
            }
            ConvWeightGrad {
                x,
                cols,
                dy,
                dw,
                db,
                ..
            } => {
                let mut v = vec![*x, *cols, *dy, *dw];
                v.extend(db);
                v
            }
            ConvInputGrad {
                dy, w, dcols, dx, ..
            } => vec![*dy, *w, *dcols, *dx],
            BnTrain { x, y, bn, .. } | BnInfer { x, y, bn, .. } => {
                vec![*x, *y, bn.save_mean, bn.save_inv_std]
            }
            BnBackward { x, dy, bn, dx, .. } => vec![*x, *dy, *dx, bn.save_mean, bn.save_inv_std],
            Act { x, y, .. } => vec![*x, *y],
            ActBackward { x, dy, dx, .. } => vec![*x, *dy, *dx],
            Dropout { x, y, .. } => vec![*x, *y],
            DropoutBackward { dy, dx, .. } => vec![*dy, *dx],
            Pool { x, y, .. } => vec![*x, *y],
            PoolBackward { x, dy, dx, .. } => vec![*x, *dy, *dx],
            Add { a, b, c, .. } => vec![*a, *b, *c],
            Accumulate { src, acc, .. } => vec![*src, *acc],
            CopyColumns { src, dst, .. } => vec![*src, *dst],
            SoftmaxXent {
                logits,
                labels,
                dlogits,
                ..
            } => {
                let mut v = vec![*logits, *labels];
                v.extend(dlogits);
                v
            }
            Softmax { logits, probs, .. } => vec![*logits, *probs],
            Adam => Vec::new(),
        }
    }
}

/// A lowered graph: the tensors and the instructions both backends run, in order.
#[derive(Clone, Debug)]
pub struct Program {
    /// What it computes.
    pub mode: Mode,
    /// Examples per step.
    pub batch: usize,
    /// Every tensor, indexed by `TensorId`.
    pub tensors: Vec<TensorInfo>,
    /// The instructions, in execution order.
    pub insts: Vec<Inst>,
    /// The batch's images, NHWC f32 (written by `Inst::Gather`).
    pub input: TensorId,
    /// The batch's labels, u32 `[batch]`.
    pub labels: TensorId,
    /// The running metrics tensor (`Home::Metrics`).
    pub metrics: TensorId,
    /// Class probabilities, in `Predict` mode.
    pub probs: Option<TensorId>,
    /// The last layer's output before the softmax, [batch, classes].
    pub logits: TensorId,
    /// The layer and phase of each instruction (`origin[i]` is `insts[i]`'s).
    pub origin: Vec<Origin>,
}
