//! Lowering a graph to a program: the forward walk in node order (a
//! topological order), the loss head, and the backward walk in reverse,
//! where each layer's gradient rule (in its op file) contributes to its
//! inputs' gradients. A tensor read by several layers gets the sum: the first
//! contribution is kept as it is, later ones are added to it (the GEMM's
//! accumulate flag where a GEMM writes the gradient, an `Accumulate`
//! instruction otherwise). Layers fused into the one before them
//! (`graph::fuse`) emit nothing: their output and their gradient are that
//! layer's.

use super::error::GraphError;
use super::fuse::{self, Fused};
use super::model::{Graph, NodeId};
use super::origin::{Origin, Phase};
use super::params::ParamLayout;
use super::program::{DType, Home, Inst, Mode, Program, TensorId, TensorInfo};
use crate::kernels::batchnorm::BnPost;

/// A gradient known so far: `owned` when this tensor was made for it (so it
/// may be added to in place); otherwise it is another tensor's gradient
/// passed through (Flatten, Add), which must not change.
#[derive(Clone, Copy)]
struct Grad {
    tensor: TensorId,
    owned: bool,
}

/// Where a rule that writes a gradient with a GEMM should put it.
#[derive(Clone, Copy, Debug)]
pub struct GradDest {
    /// The gradient tensor.
    pub tensor: TensorId,
    /// Add to what `tensor` holds rather than overwrite it.
    pub accumulate: bool,
}

/// The state of one lowering, handed to each layer's rules.
pub struct Lowering<'a> {
    /// The graph being lowered.
    pub graph: &'a Graph,
    layout: &'a ParamLayout,
    /// Examples per step.
    pub batch: usize,
    /// What the program computes.
    pub mode: Mode,
    tensors: Vec<TensorInfo>,
    insts: Vec<Inst>,
    /// The origin of each instruction, and the one `emit` gives the next.
    origin: Vec<Origin>,
    current: Origin,
    labels: TensorId,
    out: Vec<TensorId>,
    saved: Vec<Vec<TensorId>>,
    grads: Vec<Option<Grad>>,
    /// Whether a node's output gradient leads to a parameter: it or one of
    /// its ancestors has parameters. Gradients of the others are never made.
    wants_grad: Vec<bool>,
    fusion: Vec<Fused>,
}

impl Lowering<'_> {
    /// Whether this is a training program (dropout on, batch statistics, backward).
    pub fn train(&self) -> bool {
        self.mode == Mode::Train
    }

    /// `node`'s output shape, without the batch.
    pub fn shape(&self, node: NodeId) -> &[usize] {
        &self.graph.nodes[node].shape
    }

    /// Elements of one example of `node`'s output.
    pub fn per_example(&self, node: NodeId) -> usize {
        self.shape(node).iter().product()
    }

    /// `node`'s name.
    pub fn name(&self, node: NodeId) -> &str {
        &self.graph.nodes[node].name
    }

    /// The node feeding input `i` of `node`.
    pub fn input_node(&self, node: NodeId, i: usize) -> NodeId {
        self.graph.nodes[node].inputs[i]
    }

    /// The shape of input `i` of `node`, without the batch.
    pub fn input_shape(&self, node: NodeId, i: usize) -> &[usize] {
        self.shape(self.input_node(node, i))
    }

    /// The forward tensor of input `i` of `node`.
    pub fn input(&self, node: NodeId, i: usize) -> TensorId {
        self.out[self.input_node(node, i)]
    }

    /// `node`'s own forward output (in backward rules).
    pub fn output(&self, node: NodeId) -> TensorId {
        self.out[node]
    }

    /// What the kernel of `node`, a BatchNormalization, applies after it:
    /// the layers fused into it (`graph::fuse`).
    pub fn bn_post(&self, node: NodeId) -> BnPost {
        match self.fusion[node] {
            Fused::Head(post) => post,
            _ => BnPost::default(),
        }
    }

    /// The batch's labels, u32 `[batch]`.
    pub fn labels(&self) -> TensorId {
        self.labels
    }

    /// A new temporary of `len` elements (the whole batch's).
    pub fn temp(&mut self, name: String, len: usize, dtype: DType) -> TensorId {
        self.push(name, len, dtype, Home::Temp)
    }

    /// A temporary of `per_example` f32s per example.
    pub fn act(&mut self, name: String, per_example: usize) -> TensorId {
        let len = self.batch * per_example;
        self.temp(name, len, DType::F32)
    }

    fn push(&mut self, name: String, len: usize, dtype: DType, home: Home) -> TensorId {
        self.tensors.push(TensorInfo {
            name,
            len,
            dtype,
            home,
        });
        self.tensors.len() - 1
    }

    /// Parameter `name` ("kernel") of `node`.
    pub fn param(&mut self, node: NodeId, name: &str) -> TensorId {
        let e = self.layout.find(node, name);
        let home = if e.spec.trainable {
            Home::Param(e.offset)
        } else {
            Home::State(e.offset)
        };
        let (n, len) = (e.name.clone(), e.spec.len());
        self.push(n, len, DType::F32, home)
    }

    /// The gradient of parameter `name` of `node`.
    pub fn param_grad(&mut self, node: NodeId, name: &str) -> TensorId {
        let e = self.layout.find(node, name);
        let (n, len) = (format!("{}/grad", e.name), e.spec.len());
        self.push(n, len, DType::F32, Home::Grad(e.offset))
    }

    /// Appends `inst` to the program.
    pub fn emit(&mut self, inst: Inst) {
        self.insts.push(inst);
        self.origin.push(self.current);
    }

    fn at(&mut self, node: Option<NodeId>, phase: Phase) {
        self.current = Origin { node, phase };
    }

    /// Tensors the forward pass keeps for `node`'s backward rule.
    pub fn save(&mut self, node: NodeId, tensors: Vec<TensorId>) {
        self.saved[node] = tensors;
    }

    /// What [`Lowering::save`] kept for `node` (empty if nothing).
    pub fn saved(&self, node: NodeId) -> &[TensorId] {
        &self.saved[node]
    }

    /// Whether input `i` of `node` wants a gradient: only where it leads
    /// back to a parameter (not the network input, nor a Flatten of it).
    pub fn needs_grad(&self, node: NodeId, i: usize) -> bool {
        self.wants_grad[self.input_node(node, i)]
    }

    /// A fresh tensor for a gradient of input `i` of `node`.
    pub fn grad_temp(&mut self, node: NodeId, i: usize) -> TensorId {
        let input = self.input_node(node, i);
        let name = format!("{}/grad", self.graph.nodes[input].name);
        let len = self.per_example(input);
        self.act(name, len)
    }

    /// Input `i`'s gradient is `dy` itself (a layer that only reshapes or
    /// passes its gradient through).
    pub fn pass_grad(&mut self, node: NodeId, i: usize, dy: TensorId) {
        self.contribute(node, i, dy, false);
    }

    /// `dx`, a tensor made by the rule, is (a part of) input `i`'s gradient.
    pub fn add_grad(&mut self, node: NodeId, i: usize, dx: TensorId) {
        self.contribute(node, i, dx, true);
    }

    /// Where a GEMM should write input `i`'s gradient: added onto the
    /// gradient so far where that is ours to change; else a fresh tensor,
    /// which the rule then hands to `add_grad`.
    pub fn grad_dest(&mut self, node: NodeId, i: usize) -> GradDest {
        match self.grads[self.input_node(node, i)] {
            Some(Grad {
                tensor,
                owned: true,
            }) => GradDest {
                tensor,
                accumulate: true,
            },
            _ => GradDest {
                tensor: self.grad_temp(node, i),
                accumulate: false,
            },
        }
    }

    /// Completes a `grad_dest` write.
    pub fn grad_written(&mut self, node: NodeId, i: usize, dest: GradDest) {
        if !dest.accumulate {
            self.add_grad(node, i, dest.tensor);
        }
    }

    fn contribute(&mut self, node: NodeId, i: usize, t: TensorId, owned: bool) {
        let input = self.input_node(node, i);
        let n = self.batch * self.per_example(input);
        self.grads[input] = Some(match self.grads[input] {
            None => Grad { tensor: t, owned },
            Some(g) if g.owned => {
                self.emit(Inst::Accumulate {
                    n,
                    src: t,
                    acc: g.tensor,
                });
                g
            }
            Some(g) => {
                let sum = self.grad_temp(node, i);
                self.emit(Inst::Add {
                    n,
                    a: g.tensor,
                    b: t,
                    c: sum,
                });
                Grad {
                    tensor: sum,
                    owned: true,
                }
            }
        });
    }
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
    let n = graph.nodes.len();
    let mut wants_grad = vec![false; n];
    for (id, node) in graph.nodes.iter().enumerate() {
        wants_grad[id] = !node.params.is_empty() || node.inputs.iter().any(|&i| wants_grad[i]);
    }
    let mut cx = Lowering {
        graph,
        layout,
        batch,
        mode,
        tensors: Vec::new(),
        insts: Vec::new(),
        origin: Vec::new(),
        current: Origin {
            node: Some(0),
            phase: Phase::Forward,
        },
        labels: 0,
        out: vec![usize::MAX; n],
        saved: vec![Vec::new(); n],
        grads: vec![None; n],
        wants_grad,
        fusion: fuse::plan(graph),
    };
    cx.labels = cx.temp("labels".into(), batch, DType::U32);
    let metrics = cx.push("metrics".into(), 4, DType::U32, Home::Metrics);

    for (id, node) in graph.nodes.iter().enumerate() {
        cx.at(Some(id), Phase::Forward);
        cx.out[id] = match cx.fusion[id] {
            Fused::Absorbed(_) => cx.input(id, 0),
            _ => node.op.layer().forward(&mut cx, id),
        };
    }
    let input = cx.out[0];
    // The head: softmax fused with the cross-entropy, on the output's logits.
    let head = graph.output();
    let logits = cx.out[head];
    let classes = cx.per_example(head);
    let mut probs = None;
    let labels = cx.labels;
    cx.at(Some(head), Phase::Loss);
    match mode {
        Mode::Predict => {
            let p = cx.act("probabilities".into(), classes);
            cx.emit(Inst::Softmax {
                batch,
                classes,
                logits,
                probs: p,
            });
            probs = Some(p);
        }
        Mode::Train | Mode::Eval => {
            let dlogits = (mode == Mode::Train).then(|| cx.act("logits/grad".into(), classes));
            cx.emit(Inst::SoftmaxXent {
                batch,
                classes,
                logits,
                labels,
                metrics,
                dlogits,
            });
            if let Some(d) = dlogits {
                cx.grads[head] = Some(Grad {
                    tensor: d,
                    owned: true,
                });
            }
        }
    }

    if mode == Mode::Train {
        for id in (1..n).rev() {
            let Some(g) = cx.grads[id] else { continue };
            cx.at(Some(id), Phase::Backward);
            match cx.fusion[id] {
                Fused::Absorbed(_) => cx.pass_grad(id, 0, g.tensor),
                _ => graph.nodes[id].op.layer().backward(&mut cx, id, g.tensor),
            }
        }
        cx.at(None, Phase::Optimizer);
        cx.emit(Inst::Adam);
    }

    let mut program = Program {
        mode,
        batch,
        tensors: cx.tensors,
        insts: cx.insts,
        input,
        labels,
        metrics,
        probs,
        logits,
        origin: cx.origin,
    };
    super::peephole::fold_act_grads(&mut program);
    Ok(program)
}
