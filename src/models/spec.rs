//! The format-neutral model description both file formats read into, and
//! the one place it becomes a graph: layers by Keras class name, with their
//! arguments as given, checked by the op that owns them.

use serde_json::{Map, Value};
use thiserror::Error;

use crate::data::cifar10::IMAGE_SIDE;
use crate::data::CLASS_NAMES;
use crate::graph::error::GraphError;
use crate::graph::{Graph, Op};

/// Why a model could not be loaded.
#[derive(Debug, Error)]
pub enum ModelError {
    /// The model file could not be read.
    #[error("{file}: cannot read the model file: {error}")]
    Io {
        /// The path as given.
        file: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// Not TOML or JSON, or not the shape of a model file.
    #[error("{file}: {message}")]
    Syntax {
        /// The path as given.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A layer that does not fit: its class, arguments, inputs or shapes.
    #[error("{file}{}: {source}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Layer {
        /// The path as given.
        file: String,
        /// The line the layer starts on, when the format tells.
        line: Option<usize>,
        /// What the graph builder rejected.
        source: GraphError,
    },
    /// A model name that is neither a built-in nor a file.
    #[error("unknown model {name:?}: expected a built-in model ({builtins}) or the path of a .toml or .json model file")]
    Unknown {
        /// The name as given.
        name: String,
        /// The built-ins' names, comma-separated.
        builtins: String,
    },
}

/// One layer of a model file, before it is checked.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSpec {
    /// Keras's class name ("Conv2D").
    pub class: String,
    /// None: Keras's automatic name.
    pub name: Option<String>,
    /// The layers it reads, by name; None: the layer before it.
    pub inputs: Option<Vec<String>>,
    /// Its arguments as written (Keras's config keys).
    pub args: Map<String, Value>,
    /// Where the layer starts in its file, when the format tells.
    pub line: Option<usize>,
}

/// A model description, in file order; [`ModelSpec::build`] makes the graph.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// The model's name.
    pub name: String,
    /// Where it came from, for errors.
    pub file: String,
    /// The input layer's name.
    pub input_name: String,
    /// [height, width, channels]
    pub input: [usize; 3],
    /// The layers after the input.
    pub layers: Vec<LayerSpec>,
}

impl ModelSpec {
    fn error(&self, line: Option<usize>, source: GraphError) -> ModelError {
        ModelError::Layer {
            file: self.file.clone(),
            line,
            source,
        }
    }

    /// The graph, for CIFAR-10's 32×32×3 images and 10 classes.
    pub fn build(&self) -> Result<Graph, ModelError> {
        let input = [IMAGE_SIDE, IMAGE_SIDE, 3];
        if self.input != input {
            return Err(self.error(
                None,
                GraphError::Layer {
                    layer: self.input_name.clone(),
                    class: "InputLayer".into(),
                    message: format!(
                        "the input must be CIFAR-10's images, shape {input:?}; got {:?}",
                        self.input
                    ),
                },
            ));
        }
        self.build_for(CLASS_NAMES.len())
    }

    /// The graph for any input shape and `classes` classes (tests, and
    /// datasets other than CIFAR-10 to come).
    pub fn build_for(&self, classes: usize) -> Result<Graph, ModelError> {
        let mut g = Graph::with_input(&self.name, &self.input_name, self.input);
        for (i, l) in self.layers.iter().enumerate() {
            let label =
                l.name
                    .clone()
                    .unwrap_or_else(|| match crate::graph::ops::base_name(&l.class) {
                        Some(stem) => g.auto_name(stem),
                        None => l.class.to_lowercase(),
                    });
            let op = Op::from_args(&label, &l.class, l.args.clone())
                .map_err(|e| self.error(l.line, e))?;
            let inputs = match &l.inputs {
                None => vec![g.nodes.len() - 1],
                Some(names) => names
                    .iter()
                    .map(|n| {
                        g.find(n).ok_or_else(|| {
                            let later = self.layers[i..]
                                .iter()
                                .any(|x| x.name.as_deref() == Some(n.as_str()));
                            self.error(
                                l.line,
                                GraphError::Layer {
                                    layer: label.clone(),
                                    class: l.class.clone(),
                                    message: if later {
                                        format!("input {n:?} is a later layer; a layer reads only layers before it")
                                    } else {
                                        format!("input {n:?} names no layer")
                                    },
                                },
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            };
            g.add(l.name.as_deref(), op, &inputs).map_err(|e| {
                // An error about an earlier layer (a softmax that is not
                // last) points at that layer's line.
                let earlier = match &e {
                    GraphError::Layer { layer, .. } if *layer != label => self.line_of(&g, &e),
                    _ => None,
                };
                self.error(earlier.or(l.line), e)
            })?;
        }
        g.validate(classes)
            .map_err(|e| self.error(self.line_of(&g, &e), e))?;
        Ok(g)
    }

    /// The line of the layer an error names, where it is already in `g`.
    fn line_of(&self, g: &Graph, e: &GraphError) -> Option<usize> {
        let GraphError::Layer { layer, .. } = e else {
            return None;
        };
        let node = g.find(layer)?;
        self.layers.get(node.checked_sub(1)?)?.line
    }

    /// The canonical description of `graph`: every name explicit, every
    /// argument that differs from nothing written, inputs only where a
    /// layer does not read the one before it. Building it gives `graph` back.
    pub fn from_graph(graph: &Graph) -> ModelSpec {
        let input = match &graph.nodes[0].op {
            Op::Input(i) => i.shape,
            _ => unreachable!("node 0 is the input"),
        };
        let layers = graph
            .nodes
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, n)| LayerSpec {
                class: n.op.kind().to_owned(),
                name: Some(n.name.clone()),
                inputs: (n.inputs != [i - 1]).then(|| {
                    n.inputs
                        .iter()
                        .map(|&j| graph.nodes[j].name.clone())
                        .collect()
                }),
                args: n.op.layer().to_args(),
                line: None,
            })
            .collect();
        ModelSpec {
            name: graph.name.clone(),
            file: graph.name.clone(),
            input_name: graph.nodes[0].name.clone(),
            input,
            layers,
        }
    }
}
