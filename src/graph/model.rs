//! A model: a graph of ops whose shapes are inferred as it is built. Every
//! node reads the outputs of earlier nodes, so node order is a topological
//! order; the models of chapter 2 are chains.

use super::error::GraphError;
use super::op::{Activation, Op, Padding, ParamSpec};

pub type NodeId = usize;

#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub input: Option<NodeId>,
    /// Output shape without the batch dimension.
    pub shape: Vec<usize>,
    pub params: Vec<ParamSpec>,
}

#[derive(Clone, Debug)]
pub struct Graph {
    pub name: String,
    pub nodes: Vec<Node>,
}

impl Graph {
    /// A graph holding only its input node.
    pub fn new(name: &str, height: usize, width: usize, channels: usize) -> Self {
        let op = Op::Input {
            height,
            width,
            channels,
        };
        Graph {
            name: name.to_owned(),
            nodes: vec![Node {
                name: "input_layer".into(),
                shape: vec![height, width, channels],
                op,
                input: None,
                params: Vec::new(),
            }],
        }
    }

    fn next_name(&self, kind: &str) -> String {
        let base = match kind {
            "Dense" => "dense",
            "Conv2D" => "conv2d",
            "BatchNormalization" => "batch_normalization",
            "LeakyReLU" => "leaky_re_lu",
            "Activation" => "activation",
            "Dropout" => "dropout",
            "Flatten" => "flatten",
            "Softmax" => "softmax",
            other => other,
        };
        let n = self.nodes.iter().filter(|x| x.op.kind() == kind).count();
        if n == 0 {
            base.to_owned()
        } else {
            format!("{base}_{n}")
        }
    }

    /// Appends `op` reading the last node's output.
    pub fn push(&mut self, op: Op) -> Result<NodeId, GraphError> {
        let input = self.nodes.len() - 1;
        let name = self.next_name(op.kind());
        let in_shape = self.nodes[input].shape.clone();
        let shape = op.output_shape(&name, &in_shape)?;
        if let Op::Dropout { rate } = op {
            if !(0.0..1.0).contains(&rate) {
                return Err(GraphError::Invalid {
                    layer: name,
                    message: format!("dropout rate {rate} must be in [0, 1)"),
                });
            }
        }
        let params = op.params(&in_shape);
        self.nodes.push(Node {
            name,
            op,
            input: Some(input),
            shape,
            params,
        });
        Ok(self.nodes.len() - 1)
    }

    pub fn flatten(mut self) -> Result<Self, GraphError> {
        self.push(Op::Flatten)?;
        Ok(self)
    }

    pub fn dense(mut self, units: usize, activation: Activation) -> Result<Self, GraphError> {
        self.push(Op::Dense { units, activation })?;
        Ok(self)
    }

    pub fn conv2d(
        mut self,
        filters: usize,
        kernel: usize,
        stride: usize,
        padding: Padding,
        activation: Activation,
    ) -> Result<Self, GraphError> {
        self.push(Op::Conv2d {
            filters,
            kernel,
            stride,
            padding,
            activation,
        })?;
        Ok(self)
    }

    /// Keras defaults: momentum 0.99, epsilon 1e-3.
    pub fn batch_norm(mut self) -> Result<Self, GraphError> {
        self.push(Op::BatchNorm {
            momentum: 0.99,
            eps: 1e-3,
        })?;
        Ok(self)
    }

    pub fn activation(mut self, a: Activation) -> Result<Self, GraphError> {
        self.push(Op::Activation(a))?;
        Ok(self)
    }

    pub fn dropout(mut self, rate: f32) -> Result<Self, GraphError> {
        self.push(Op::Dropout { rate })?;
        Ok(self)
    }

    pub fn softmax_cross_entropy(mut self) -> Result<Self, GraphError> {
        self.push(Op::SoftmaxCrossEntropy)?;
        Ok(self)
    }

    pub fn input_shape(&self) -> &[usize] {
        &self.nodes[0].shape
    }

    pub fn classes(&self) -> usize {
        self.nodes
            .last()
            .map(|n| n.shape.iter().product())
            .unwrap_or(0)
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

    /// A Keras-style summary table.
    pub fn summary(&self) -> String {
        let mut s = format!("Model: \"{}\"\n", self.name);
        let rule = "─".repeat(72);
        s.push_str(&format!(
            "{rule}\n{:<36}{:<24}{:>12}\n{rule}\n",
            "Layer (type)", "Output Shape", "Param #"
        ));
        for n in &self.nodes {
            let shape: Vec<String> = std::iter::once("None".to_string())
                .chain(n.shape.iter().map(|d| d.to_string()))
                .collect();
            let count: usize = n.params.iter().map(ParamSpec::len).sum();
            s.push_str(&format!(
                "{:<36}{:<24}{:>12}\n",
                format!("{} ({})", n.name, n.op.kind()),
                format!("({})", shape.join(", ")),
                count
            ));
        }
        let (t, nt) = self.param_counts();
        s.push_str(&format!(
            "{rule}\n Total params: {} ({})\n Trainable params: {} ({})\n Non-trainable params: {} ({})\n",
            t + nt,
            human_bytes(4 * (t + nt)),
            t,
            human_bytes(4 * t),
            nt,
            human_bytes(4 * nt)
        ));
        s
    }
}

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
