//! A model: a graph of layers whose shapes are inferred as it is built.
//! Every node reads earlier nodes only, so node order is a topological
//! order; a node may read several (Add, Concatenate) and be read by several
//! (a residual branch). The last node is the output, whose softmax is fused
//! with the loss.

use super::error::GraphError;
use super::ops::{Input, Op, ParamSpec};

/// Index of a node in `Graph::nodes`.
pub type NodeId = usize;

/// One layer of a graph.
#[derive(Clone, Debug)]
pub struct Node {
    /// Its unique name (Keras's).
    pub name: String,
    /// The layer.
    pub op: Op,
    /// The nodes it reads, all earlier in `Graph::nodes`.
    pub inputs: Vec<NodeId>,
    /// Output shape without the batch dimension.
    pub shape: Vec<usize>,
    /// Its weights, in Keras's order.
    pub params: Vec<ParamSpec>,
}

/// A model: layers in topological order, node 0 the input, the last node the output.
#[derive(Clone, Debug)]
pub struct Graph {
    /// The model's name.
    pub name: String,
    /// Its layers.
    pub nodes: Vec<Node>,
}

impl Graph {
    /// A graph holding only its input node, named as Keras names it.
    pub fn new(name: &str, height: usize, width: usize, channels: usize) -> Self {
        Self::with_input(name, "input_layer", [height, width, channels])
    }

    /// A graph holding only its input node, named `input_name`, of shape
    /// [height, width, channels].
    pub fn with_input(name: &str, input_name: &str, shape: [usize; 3]) -> Self {
        Graph {
            name: name.to_owned(),
            nodes: vec![Node {
                name: input_name.to_owned(),
                op: Op::Input(Input { shape }),
                inputs: Vec::new(),
                shape: shape.to_vec(),
                params: Vec::new(),
            }],
        }
    }

    /// Keras's automatic name: the stem, then stem_1, stem_2, … skipping
    /// names already taken.
    pub fn auto_name(&self, base: &str) -> String {
        (0..)
            .map(|i| {
                if i == 0 {
                    base.to_owned()
                } else {
                    format!("{base}_{i}")
                }
            })
            .find(|n| self.find(n).is_none())
            .expect("an unused name exists")
    }

    /// The node named `name`.
    pub fn find(&self, name: &str) -> Option<NodeId> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Appends `op` reading `inputs` (earlier nodes), named `name` or
    /// automatically; checks its shapes.
    pub fn add(
        &mut self,
        name: Option<&str>,
        op: impl Into<Op>,
        inputs: &[NodeId],
    ) -> Result<NodeId, GraphError> {
        let op = op.into();
        let layer = op.layer();
        let name = match name {
            Some(n) => n.to_owned(),
            None => self
                .auto_name(super::ops::base_name(layer.class()).expect("every class has a stem")),
        };
        let invalid = |message: String| GraphError::Layer {
            layer: name.clone(),
            class: layer.class().to_owned(),
            message,
        };
        if self.find(&name).is_some() {
            return Err(invalid(
                "another layer already has this name; names must be unique".into(),
            ));
        }
        if matches!(op, Op::Input(_)) {
            return Err(invalid(
                "a model has one input layer, and it comes first".into(),
            ));
        }
        let (lo, hi) = layer.arity();
        if inputs.len() < lo || inputs.len() > hi {
            let want = if lo == hi {
                format!("{lo}")
            } else if hi == usize::MAX {
                format!("at least {lo}")
            } else {
                format!("{lo} to {hi}")
            };
            return Err(invalid(format!(
                "reads {want} input(s), got {}",
                inputs.len()
            )));
        }
        if let Some(&bad) = inputs.iter().find(|&&i| i >= self.nodes.len()) {
            return Err(invalid(format!("input {bad} is not an earlier layer")));
        }
        if let Some(prev) = self.nodes.last() {
            if prev.op.layer().softmax() {
                return Err(GraphError::Layer {
                    layer: prev.name.clone(),
                    class: prev.op.kind().to_owned(),
                    message: "softmax is supported only on the output layer, where it is fused with the cross-entropy loss".into(),
                });
            }
        }
        let shapes: Vec<&[usize]> = inputs
            .iter()
            .map(|&i| self.nodes[i].shape.as_slice())
            .collect();
        let shape = layer.output_shape(&shapes).map_err(|expected| {
            let got = shapes
                .iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(" and ");
            invalid(format!("expected {expected}, got input shape {got}"))
        })?;
        if shape.contains(&0) {
            return Err(invalid(format!(
                "its output shape {shape:?} is empty (its input is too small)"
            )));
        }
        if elements(&shape).is_none() {
            return Err(invalid(format!(
                "its output shape {shape:?} has more than {MAX_ELEMENTS} elements per example"
            )));
        }
        let params = layer.params(&shapes);
        if let Some(p) = params.iter().find(|p| elements(&p.shape).is_none()) {
            return Err(invalid(format!(
                "its {} of shape {:?} has more than {MAX_ELEMENTS} elements",
                p.name, p.shape
            )));
        }
        self.nodes.push(Node {
            name,
            op,
            inputs: inputs.to_vec(),
            shape,
            params,
        });
        Ok(self.nodes.len() - 1)
    }

    /// Checks what only the whole graph shows: every layer's output is read
    /// by a later one (or is the output), and the output ends in a softmax
    /// over `classes` classes.
    pub fn validate(&self, classes: usize) -> Result<(), GraphError> {
        let head = self.output();
        let out = &self.nodes[head];
        let err = |n: &Node, message: String| GraphError::Layer {
            layer: n.name.clone(),
            class: n.op.kind().to_owned(),
            message,
        };
        if head == 0 {
            return Err(err(
                out,
                "a model needs at least one layer after its input".into(),
            ));
        }
        let mut read = vec![false; self.nodes.len()];
        for n in &self.nodes {
            for &i in &n.inputs {
                read[i] = true;
            }
        }
        if let Some(unused) = (0..head).find(|&i| !read[i]) {
            return Err(err(
                &self.nodes[unused],
                format!(
                    "its output is not used by any later layer (the output layer is {:?}, the last one)",
                    out.name
                ),
            ));
        }
        if !out.op.layer().softmax() {
            return Err(err(
                out,
                "the output layer must end in a softmax (activation = \"softmax\", or a Softmax or Activation(\"softmax\") layer): the loss is softmax cross-entropy".into(),
            ));
        }
        if out.shape != [classes] {
            return Err(err(
                out,
                format!(
                    "the output must be {classes} class probabilities, shape [{classes}]; got {:?}",
                    out.shape
                ),
            ));
        }
        Ok(())
    }

    /// The output node: the last.
    pub fn output(&self) -> NodeId {
        self.nodes.len() - 1
    }

    /// [height, width, channels] of the input.
    pub fn input_shape(&self) -> &[usize] {
        &self.nodes[0].shape
    }

    /// Classes: the length of the output.
    pub fn classes(&self) -> usize {
        self.nodes[self.output()].shape.iter().product()
    }

    /// (trainable, non-trainable) parameter counts.
    pub fn param_counts(&self) -> (usize, usize) {
        let mut t = 0;
        let mut nt = 0;
        for p in self.nodes.iter().flat_map(|n| &n.params) {
            if p.trainable {
                t += p.len();
            } else {
                nt += p.len();
            }
        }
        (t, nt)
    }

    /// A Keras-style summary table; a branching graph gets Keras's
    /// "Connected to" column.
    pub fn summary(&self) -> String {
        let branching = self
            .nodes
            .iter()
            .enumerate()
            .any(|(i, n)| i > 0 && (n.inputs.len() != 1 || n.inputs[0] != i - 1));
        let rows: Vec<[String; 4]> = self
            .nodes
            .iter()
            .map(|n| {
                let shape: Vec<String> = std::iter::once("None".to_string())
                    .chain(n.shape.iter().map(|d| d.to_string()))
                    .collect();
                let count: usize = n.params.iter().map(ParamSpec::len).sum();
                let inputs: Vec<&str> = n
                    .inputs
                    .iter()
                    .map(|&i| self.nodes[i].name.as_str())
                    .collect();
                [
                    format!("{} ({})", n.name, n.op.kind()),
                    format!("({})", shape.join(", ")),
                    thousands(count),
                    inputs.join(", "),
                ]
            })
            .collect();
        let header = ["Layer (type)", "Output Shape", "Param #", "Connected to"];
        let cols = if branching { 4 } else { 3 };
        let width = |c: usize| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].chars().count()])
                .max()
                .unwrap_or(0)
                + 2
        };
        let widths: Vec<usize> = (0..cols).map(width).collect();
        let line = |r: &[String]| {
            let mut s = String::new();
            for (c, w) in widths.iter().enumerate() {
                if c == 2 {
                    s.push_str(&format!("{:>w$}  ", r[c], w = w - 2));
                } else {
                    s.push_str(&format!("{:<w$}", r[c], w = *w));
                }
            }
            s.trim_end().to_owned() + "\n"
        };
        let rule = "─".repeat(widths.iter().sum::<usize>());
        let mut s = format!("Model: \"{}\"\n{rule}\n", self.name);
        let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
        s.push_str(&line(&head));
        s.push_str(&format!("{rule}\n"));
        for r in &rows {
            s.push_str(&line(r));
        }
        let (t, nt) = self.param_counts();
        s.push_str(&format!(
            "{rule}\n Total params: {} ({})\n Trainable params: {} ({})\n Non-trainable params: {} ({})\n",
            thousands(t + nt),
            human_bytes(4 * (t + nt)),
            thousands(t),
            human_bytes(4 * t),
            thousands(nt),
            human_bytes(4 * nt)
        ));
        s
    }
}

/// The most elements one tensor (per example, for activations) may have:
/// kernels index with u32, and no adapter binds more.
pub const MAX_ELEMENTS: usize = 1 << 31;

/// The element count of `shape`, if at most `MAX_ELEMENTS`.
fn elements(shape: &[usize]) -> Option<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
}

/// 592554 → "592,554", as Keras's summary writes counts.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `b` bytes as Keras's summary writes them: `1.23 MB` (units of 1024²), `4.00 KB`, `12 B`.
pub fn human_bytes(b: usize) -> String {
    let b = b as f64;
    if b >= 1024.0 * 1024.0 {
        format!("{:.2} MB", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.2} KB", b / 1024.0)
    } else {
        format!("{b} B")
    }
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(592_554), "592,554");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
