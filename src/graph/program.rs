//! Lowering: a graph becomes a flat program of kernel-level instructions
//! over numbered tensors. The backward pass is derived here, one gradient
//! rule per op, and both backends run the very same program, so a GPU step
//! and a CPU step can be compared instruction by instruction.

use super::error::GraphError;
use super::model::{Graph, NodeId};
use super::op::{Activation, Op, Padding};
use super::params::ParamLayout;
use crate::kernels::batchnorm::BnShape;
use crate::kernels::conv::{self, Conv2dGeom};
use crate::kernels::elementwise::ActKind;
use crate::kernels::gemm::{Epilogue, GemmShape};

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
    Gemm {
        shape: GemmShape,
        a: TensorId,
        b: TensorId,
        bias: Option<TensorId>,
        c: TensorId,
        epilogue: Epilogue,
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
    /// dx ← act'(x)·grad.
    ActBackward {
        n: usize,
        kind: ActKind,
        x: TensorId,
        grad: TensorId,
        dx: TensorId,
    },
    Dropout {
        n: usize,
        rate: f32,
        x: TensorId,
        y: TensorId,
    },
    DropoutBackward {
        n: usize,
        rate: f32,
        dy: TensorId,
        dx: TensorId,
    },
    ColumnSums {
        rows: usize,
        cols: usize,
        dy: TensorId,
        db: TensorId,
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
            ActBackward { x, grad, dx, .. } => vec![*x, *grad, *dx],
            Dropout { x, y, .. } => vec![*x, *y],
            DropoutBackward { dy, dx, .. } => vec![*dy, *dx],
            ColumnSums { dy, db, .. } => vec![*dy, *db],
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
}

struct Builder<'a> {
    layout: &'a ParamLayout,
    batch: usize,
    tensors: Vec<TensorInfo>,
    insts: Vec<Inst>,
}

impl Builder<'_> {
    fn temp(&mut self, name: String, len: usize, dtype: DType) -> TensorId {
        self.tensors.push(TensorInfo {
            name,
            len,
            dtype,
            home: Home::Temp,
        });
        self.tensors.len() - 1
    }

    fn act(&mut self, name: String, per_example: usize) -> TensorId {
        let len = self.batch * per_example;
        self.temp(name, len, DType::F32)
    }

    fn param(&mut self, node: NodeId, name: &str) -> TensorId {
        let e = self.layout.find(node, name);
        let home = if e.spec.trainable {
            Home::Param(e.offset)
        } else {
            Home::State(e.offset)
        };
        self.tensors.push(TensorInfo {
            name: e.name.clone(),
            len: e.spec.len(),
            dtype: DType::F32,
            home,
        });
        self.tensors.len() - 1
    }

    fn grad(&mut self, node: NodeId, name: &str) -> TensorId {
        let e = self.layout.find(node, name);
        self.tensors.push(TensorInfo {
            name: format!("{}/grad", e.name),
            len: e.spec.len(),
            dtype: DType::F32,
            home: Home::Grad(e.offset),
        });
        self.tensors.len() - 1
    }
}

fn epilogue(a: Activation) -> Epilogue {
    match a {
        Activation::Linear => Epilogue::None,
        Activation::Relu => Epilogue::Relu,
        Activation::LeakyRelu(s) => Epilogue::LeakyRelu(s),
    }
}

fn act_kind(a: Activation) -> Option<ActKind> {
    match a {
        Activation::Linear => None,
        Activation::Relu => Some(ActKind::Relu),
        Activation::LeakyRelu(s) => Some(ActKind::LeakyRelu(s)),
    }
}

fn conv_geom(batch: usize, input: &[usize], op: &Op) -> Conv2dGeom {
    let Op::Conv2d {
        filters,
        kernel,
        stride,
        padding,
        ..
    } = *op
    else {
        unreachable!("conv_geom on a non-conv op")
    };
    Conv2dGeom {
        batch,
        in_h: input[0],
        in_w: input[1],
        in_c: input[2],
        out_c: filters,
        kh: kernel,
        kw: kernel,
        stride_h: stride,
        stride_w: stride,
        padding: match padding {
            Padding::Same => conv::Padding::Same,
            Padding::Valid => conv::Padding::Valid,
        },
    }
}

/// What the forward pass left for the backward pass of one node.
#[derive(Clone, Copy, Default)]
struct Saved {
    cols: Option<TensorId>,
    bn: Option<BnTensors>,
}

/// Lowers `graph` for `batch` examples per step.
pub fn lower(
    graph: &Graph,
    layout: &ParamLayout,
    batch: usize,
    mode: Mode,
) -> Result<Program, GraphError> {
    if batch == 0 {
        return Err(GraphError::Invalid {
            layer: graph.name.clone(),
            message: "batch size must be at least 1".into(),
        });
    }
    let train = mode == Mode::Train;
    let mut b = Builder {
        layout,
        batch,
        tensors: Vec::new(),
        insts: Vec::new(),
    };
    let n = graph.nodes.len();
    let mut out: Vec<TensorId> = vec![usize::MAX; n];
    let mut saved: Vec<Saved> = vec![Saved::default(); n];
    let per_ex = |id: NodeId| graph.nodes[id].shape.iter().product::<usize>();

    let labels = b.temp("labels".into(), batch, DType::U32);
    let metrics = {
        b.tensors.push(TensorInfo {
            name: "metrics".into(),
            len: 4,
            dtype: DType::U32,
            home: Home::Metrics,
        });
        b.tensors.len() - 1
    };
    let mut input = usize::MAX;
    let mut logits = usize::MAX;
    let mut probs = None;
    let mut dlogits = None;

    // Forward.
    for (id, node) in graph.nodes.iter().enumerate() {
        let x = node.input.map(|i| out[i]);
        let in_shape: &[usize] = node
            .input
            .map(|i| graph.nodes[i].shape.as_slice())
            .unwrap_or(&[]);
        out[id] = match &node.op {
            Op::Input { .. } => {
                input = b.act(node.name.clone(), per_ex(id));
                b.insts.push(Inst::Gather { x: input, labels });
                input
            }
            Op::Flatten => x.expect("has input"),
            Op::Dense { units, activation } => {
                let x = x.expect("has input");
                let y = b.act(node.name.clone(), per_ex(id));
                let w = b.param(id, "kernel");
                let bias = b.param(id, "bias");
                b.insts.push(Inst::Gemm {
                    shape: GemmShape {
                        m: batch,
                        n: *units,
                        k: in_shape[0],
                        trans_a: false,
                        trans_b: false,
                    },
                    a: x,
                    b: w,
                    bias: Some(bias),
                    c: y,
                    epilogue: epilogue(*activation),
                });
                y
            }
            Op::Conv2d { activation, .. } => {
                let x = x.expect("has input");
                let g = conv_geom(batch, in_shape, &node.op);
                let cols = b.temp(
                    format!("{}/im2col", node.name),
                    g.col_rows() * g.col_cols(),
                    DType::F32,
                );
                b.insts.push(Inst::Im2col { geom: g, x, cols });
                saved[id].cols = Some(cols);
                let y = b.act(node.name.clone(), per_ex(id));
                let w = b.param(id, "kernel");
                let bias = b.param(id, "bias");
                b.insts.push(Inst::Gemm {
                    shape: GemmShape {
                        m: g.col_rows(),
                        n: g.out_c,
                        k: g.col_cols(),
                        trans_a: false,
                        trans_b: false,
                    },
                    a: cols,
                    b: w,
                    bias: Some(bias),
                    c: y,
                    epilogue: epilogue(*activation),
                });
                y
            }
            Op::BatchNorm { momentum, eps } => {
                let x = x.expect("has input");
                let channels = *node.shape.last().expect("non-empty");
                let shape = BnShape {
                    rows: batch * per_ex(id) / channels,
                    channels,
                };
                let y = b.act(node.name.clone(), per_ex(id));
                let bn = BnTensors {
                    gamma: b.param(id, "gamma"),
                    beta: b.param(id, "beta"),
                    moving_mean: b.param(id, "moving_mean"),
                    moving_var: b.param(id, "moving_variance"),
                    save_mean: b.temp(format!("{}/mean", node.name), channels, DType::F32),
                    save_inv_std: b.temp(format!("{}/inv_std", node.name), channels, DType::F32),
                };
                saved[id].bn = Some(bn);
                b.insts.push(if train {
                    Inst::BnTrain {
                        shape,
                        x,
                        y,
                        bn,
                        momentum: *momentum,
                        eps: *eps,
                    }
                } else {
                    Inst::BnInfer {
                        shape,
                        x,
                        y,
                        bn,
                        eps: *eps,
                    }
                });
                y
            }
            Op::Activation(a) => {
                let x = x.expect("has input");
                match act_kind(*a) {
                    None => x,
                    Some(kind) => {
                        let y = b.act(node.name.clone(), per_ex(id));
                        b.insts.push(Inst::Act {
                            n: batch * per_ex(id),
                            kind,
                            x,
                            y,
                        });
                        y
                    }
                }
            }
            Op::Dropout { rate } => {
                let x = x.expect("has input");
                if train && *rate > 0.0 {
                    let y = b.act(node.name.clone(), per_ex(id));
                    b.insts.push(Inst::Dropout {
                        n: batch * per_ex(id),
                        rate: *rate,
                        x,
                        y,
                    });
                    y
                } else {
                    x
                }
            }
            Op::SoftmaxCrossEntropy => {
                let x = x.expect("has input");
                logits = x;
                let classes = per_ex(id);
                match mode {
                    Mode::Predict => {
                        let p = b.act("probabilities".into(), classes);
                        b.insts.push(Inst::Softmax {
                            batch,
                            classes,
                            logits: x,
                            probs: p,
                        });
                        probs = Some(p);
                    }
                    Mode::Train | Mode::Eval => {
                        let loss = b.temp("loss".into(), batch, DType::F32);
                        let correct = b.temp("correct".into(), batch, DType::U32);
                        let d = train.then(|| b.act("logits/grad".into(), classes));
                        b.insts.push(Inst::SoftmaxXent {
                            batch,
                            classes,
                            logits: x,
                            labels,
                            loss,
                            correct,
                            dlogits: d,
                        });
                        b.insts.push(Inst::Metrics {
                            batch,
                            loss,
                            correct,
                            metrics,
                        });
                        dlogits = d;
                    }
                }
                x
            }
        };
    }

    if train {
        backward(
            graph,
            &mut b,
            &out,
            &saved,
            dlogits.expect("train mode has a loss"),
        )?;
        b.insts.push(Inst::Adam);
    }

    Ok(Program {
        mode,
        batch,
        tensors: b.tensors,
        insts: b.insts,
        input,
        labels,
        metrics,
        probs,
        logits,
    })
}

/// The backward pass: walk the nodes in reverse, one gradient rule per op.
fn backward(
    graph: &Graph,
    b: &mut Builder,
    out: &[TensorId],
    saved: &[Saved],
    dlogits: TensorId,
) -> Result<(), GraphError> {
    let n = graph.nodes.len();
    let batch = b.batch;
    let mut consumers = vec![0usize; n];
    for node in &graph.nodes {
        if let Some(i) = node.input {
            consumers[i] += 1;
        }
    }
    if let Some(i) = consumers.iter().position(|&c| c > 1) {
        return Err(GraphError::Invalid {
            layer: graph.nodes[i].name.clone(),
            message: "outputs used by several layers need gradient accumulation, which the executor does not do yet".into(),
        });
    }
    let per_ex = |id: NodeId| graph.nodes[id].shape.iter().product::<usize>();
    // grad[id]: the gradient of node id's output.
    let mut grad: Vec<Option<TensorId>> = vec![None; n];
    let head = n - 1;
    let Some(logits_node) = graph.nodes[head].input else {
        return Err(GraphError::Invalid {
            layer: graph.nodes[head].name.clone(),
            message: "a model must end in a loss".into(),
        });
    };
    grad[logits_node] = Some(dlogits);

    for id in (0..head).rev() {
        let node = &graph.nodes[id];
        let Some(g) = grad[id] else { continue };
        let Some(input) = node.input else { continue };
        // The network input needs no gradient: stop the chain there.
        let needs_dx = !matches!(graph.nodes[input].op, Op::Input { .. });
        let x = out[input];
        let in_len = per_ex(input);
        match &node.op {
            Op::Input { .. } | Op::SoftmaxCrossEntropy => {}
            Op::Flatten => grad[input] = Some(g),
            Op::Dense { units, activation } => {
                let g = match act_kind(*activation) {
                    Some(kind) => {
                        let dx = b.act(format!("{}/act/grad", node.name), *units);
                        b.insts.push(Inst::ActBackward {
                            n: batch * units,
                            kind,
                            x: out[id],
                            grad: g,
                            dx,
                        });
                        dx
                    }
                    None => g,
                };
                let dw = b.grad(id, "kernel");
                let db = b.grad(id, "bias");
                b.insts.push(Inst::Gemm {
                    shape: GemmShape {
                        m: in_len,
                        n: *units,
                        k: batch,
                        trans_a: true,
                        trans_b: false,
                    },
                    a: x,
                    b: g,
                    bias: None,
                    c: dw,
                    epilogue: Epilogue::None,
                });
                b.insts.push(Inst::ColumnSums {
                    rows: batch,
                    cols: *units,
                    dy: g,
                    db,
                });
                if needs_dx {
                    let w = b.param(id, "kernel");
                    let dx = b.act(format!("{}/grad", graph.nodes[input].name), in_len);
                    b.insts.push(Inst::Gemm {
                        shape: GemmShape {
                            m: batch,
                            n: in_len,
                            k: *units,
                            trans_a: false,
                            trans_b: true,
                        },
                        a: g,
                        b: w,
                        bias: None,
                        c: dx,
                        epilogue: Epilogue::None,
                    });
                    grad[input] = Some(dx);
                }
            }
            Op::Conv2d { activation, .. } => {
                let geom = conv_geom(batch, &graph.nodes[input].shape, &node.op);
                let g = match act_kind(*activation) {
                    Some(kind) => {
                        let dx = b.act(format!("{}/act/grad", node.name), per_ex(id));
                        b.insts.push(Inst::ActBackward {
                            n: batch * per_ex(id),
                            kind,
                            x: out[id],
                            grad: g,
                            dx,
                        });
                        dx
                    }
                    None => g,
                };
                let cols = saved[id].cols.expect("conv saved its columns");
                let dw = b.grad(id, "kernel");
                let db = b.grad(id, "bias");
                b.insts.push(Inst::Gemm {
                    shape: GemmShape {
                        m: geom.col_cols(),
                        n: geom.out_c,
                        k: geom.col_rows(),
                        trans_a: true,
                        trans_b: false,
                    },
                    a: cols,
                    b: g,
                    bias: None,
                    c: dw,
                    epilogue: Epilogue::None,
                });
                b.insts.push(Inst::ColumnSums {
                    rows: geom.col_rows(),
                    cols: geom.out_c,
                    dy: g,
                    db,
                });
                if needs_dx {
                    let w = b.param(id, "kernel");
                    let dcols = b.temp(
                        format!("{}/im2col/grad", node.name),
                        geom.col_rows() * geom.col_cols(),
                        DType::F32,
                    );
                    b.insts.push(Inst::Gemm {
                        shape: GemmShape {
                            m: geom.col_rows(),
                            n: geom.col_cols(),
                            k: geom.out_c,
                            trans_a: false,
                            trans_b: true,
                        },
                        a: g,
                        b: w,
                        bias: None,
                        c: dcols,
                        epilogue: Epilogue::None,
                    });
                    let dx = b.act(format!("{}/grad", graph.nodes[input].name), in_len);
                    b.insts.push(Inst::Col2im { geom, dcols, dx });
                    grad[input] = Some(dx);
                }
            }
            Op::BatchNorm { .. } => {
                let channels = *node.shape.last().expect("non-empty");
                let bn = saved[id].bn.expect("batch norm saved its statistics");
                let dx = b.act(format!("{}/grad", graph.nodes[input].name), in_len);
                let dgamma = b.grad(id, "gamma");
                let dbeta = b.grad(id, "beta");
                b.insts.push(Inst::BnBackward {
                    shape: BnShape {
                        rows: batch * in_len / channels,
                        channels,
                    },
                    x,
                    dy: g,
                    bn,
                    dx,
                    dgamma,
                    dbeta,
                });
                grad[input] = Some(dx);
            }
            Op::Activation(a) => {
                grad[input] = Some(match act_kind(*a) {
                    Some(kind) => {
                        let dx = b.act(format!("{}/grad", graph.nodes[input].name), in_len);
                        b.insts.push(Inst::ActBackward {
                            n: batch * in_len,
                            kind,
                            x,
                            grad: g,
                            dx,
                        });
                        dx
                    }
                    None => g,
                });
            }
            Op::Dropout { rate } => {
                if *rate > 0.0 {
                    let dx = b.act(format!("{}/grad", graph.nodes[input].name), in_len);
                    b.insts.push(Inst::DropoutBackward {
                        n: batch * in_len,
                        rate: *rate,
                        dy: g,
                        dx,
                    });
                    grad[input] = Some(dx);
                } else {
                    grad[input] = Some(g);
                }
            }
        }
    }
    Ok(())
}
