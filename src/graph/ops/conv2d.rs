//! `Conv2D(filters, kernel_size, strides, padding, activation, use_bias)`,
//! NHWC with Keras's kernel layout [kh, kw, in, out]: im2col, then one GEMM
//! (bias and ReLU-family activations in its epilogue). Backward:
//! dW = colsᵀ·dz, db = column sums of dz, dx = col2im(dz·Wᵀ).

use serde_json::{Map, Value};

use super::activation::Activation;
use super::linear::{kernel_and_bias, Linear, Rows};
use super::{Args, Layer, ParamSpec};
use crate::graph::args::ArgsOut;
use crate::graph::error::GraphError;
use crate::graph::lower::Lowering;
use crate::graph::model::NodeId;
use crate::graph::program::{DType, Inst, TensorId};
use crate::kernels::conv::Conv2dGeom;
use crate::kernels::window::{window_out, Padding, Window2d};

/// `Conv2D`: see the module doc.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2d {
    /// Output channels.
    pub filters: usize,
    /// [height, width]
    pub kernel: [usize; 2],
    /// Steps [down, across].
    pub strides: [usize; 2],
    /// "same" or "valid".
    pub padding: Padding,
    /// Applied after the bias.
    pub activation: Activation,
    /// Whether there is a bias (Keras's default: yes).
    pub use_bias: bool,
}

/// Reads Keras's `padding` argument.
pub fn padding_arg(a: &mut Args, default: &'static str) -> Result<Padding, GraphError> {
    Ok(match a.choice("padding", default, &["valid", "same"])? {
        "same" => Padding::Same,
        _ => Padding::Valid,
    })
}

/// Keras's name of `p`.
pub fn padding_name(p: Padding) -> &'static str {
    match p {
        Padding::Same => "same",
        Padding::Valid => "valid",
    }
}

/// The output [height, width] of a window sliding over `input`, or why not.
pub fn window_shape(
    input: &[usize],
    kernel: [usize; 2],
    strides: [usize; 2],
    padding: Padding,
    what: &str,
) -> Result<[usize; 2], String> {
    let [h, w, _] = input else {
        return Err("an image input [height, width, channels]".into());
    };
    let too_big =
        || format!("an input at least as large as the {what} {kernel:?} (padding \"valid\")");
    let (oh, _) = window_out(*h, kernel[0], strides[0], padding).ok_or_else(too_big)?;
    let (ow, _) = window_out(*w, kernel[1], strides[1], padding).ok_or_else(too_big)?;
    Ok([oh, ow])
}

impl Conv2d {
    /// `filters` square `kernel`×`kernel` filters with stride `stride`, with bias, linear.
    pub fn new(filters: usize, kernel: usize, stride: usize, padding: Padding) -> Self {
        Conv2d {
            filters,
            kernel: [kernel, kernel],
            strides: [stride, stride],
            padding,
            activation: Activation::Linear,
            use_bias: true,
        }
    }

    /// With `activation` after the bias.
    pub fn with_activation(self, activation: Activation) -> Self {
        Conv2d { activation, ..self }
    }

    /// Without a bias (as before a BatchNorm).
    pub fn without_bias(self) -> Self {
        Conv2d {
            use_bias: false,
            ..self
        }
    }

    /// From Keras's arguments; unsupported ones are errors.
    pub fn from_args(a: &mut Args) -> Result<Self, GraphError> {
        let filters = a.int("filters", None, 1)?;
        let kernel = a.pair("kernel_size", None)?;
        let strides = a.pair("strides", Some([1, 1]))?;
        let padding = padding_arg(a, "valid")?;
        let activation = Activation::from_arg(a, "activation", "linear")?;
        let use_bias = a.boolean("use_bias", true)?;
        a.default_only("dilation_rate", 1.into(), "1")?;
        a.default_only("groups", 1.into(), "1")?;
        a.default_only(
            "data_format",
            "channels_last".into(),
            "\"channels_last\" (NHWC)",
        )?;
        a.initializer("kernel_initializer", "GlorotUniform")?;
        a.initializer("bias_initializer", "Zeros")?;
        a.none_only(&[
            "kernel_regularizer",
            "bias_regularizer",
            "activity_regularizer",
            "kernel_constraint",
            "bias_constraint",
        ])?;
        Ok(Conv2d {
            filters,
            kernel,
            strides,
            padding,
            activation,
            use_bias,
        })
    }

    fn linear(&self, g: &Conv2dGeom) -> Linear {
        Linear {
            rows: g.col_rows(),
            k: g.col_cols(),
            out: self.filters,
            use_bias: self.use_bias,
            activation: self.activation,
        }
    }

    fn geom(&self, batch: usize, input: &[usize]) -> Conv2dGeom {
        Conv2dGeom {
            batch,
            in_c: input[2],
            out_c: self.filters,
            window: Window2d {
                in_h: input[0],
                in_w: input[1],
                kh: self.kernel[0],
                kw: self.kernel[1],
                stride_h: self.strides[0],
                stride_w: self.strides[1],
                padding: self.padding,
            },
        }
    }
}

impl Layer for Conv2d {
    fn class(&self) -> &'static str {
        "Conv2D"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        let [oh, ow] = window_shape(inputs[0], self.kernel, self.strides, self.padding, "kernel")?;
        Ok(vec![oh, ow, self.filters])
    }

    fn params(&self, inputs: &[&[usize]]) -> Vec<ParamSpec> {
        let c = inputs[0][2];
        let [kh, kw] = self.kernel;
        // Saturating: a kernel too large to exist is rejected by Graph::add
        // from its shape, after this.
        let taps = kh.saturating_mul(kw);
        kernel_and_bias(
            vec![kh, kw, c, self.filters],
            taps.saturating_mul(c),
            taps.saturating_mul(self.filters),
            self.use_bias,
        )
    }

    fn forward(&self, cx: &mut Lowering, node: NodeId) -> TensorId {
        let x = cx.input(node, 0);
        let g = self.geom(cx.batch, cx.input_shape(node, 0));
        let name = cx.name(node).to_owned();
        let cols = cx.temp(
            format!("{name}/im2col"),
            g.col_rows() * g.col_cols(),
            DType::F32,
        );
        let rows = Rows::Im2col { geom: g, x, cols };
        let (y, pre) = self.linear(&g).forward(cx, node, rows);
        cx.save(node, [x, cols].into_iter().chain(pre).collect());
        y
    }

    fn backward(&self, cx: &mut Lowering, node: NodeId, dy: TensorId) {
        let g = self.geom(cx.batch, cx.input_shape(node, 0));
        let lin = self.linear(&g);
        let saved = cx.saved(node);
        let (x, cols, pre) = (saved[0], saved[1], saved.get(2).copied());
        let rows = Rows::Im2col { geom: g, x, cols };
        let dz = lin.weight_grads(cx, node, rows, dy, pre);
        if cx.needs_grad(node, 0) {
            let dcols = cx.temp(
                format!("{}/im2col/grad", cx.name(node)),
                g.col_rows() * g.col_cols(),
                DType::F32,
            );
            let dx = cx.grad_temp(node, 0);
            let w = cx.param(node, "kernel");
            cx.emit(Inst::ConvInputGrad {
                geom: g,
                dy: dz,
                w,
                dcols,
                dx,
            });
            cx.add_grad(node, 0, dx);
        }
    }

    fn to_args(&self) -> Map<String, Value> {
        let mut out = ArgsOut::default()
            .set("filters", self.filters)
            .pair("kernel_size", self.kernel)
            .pair("strides", self.strides)
            .set("padding", padding_name(self.padding))
            .set("activation", self.activation.name());
        if !self.use_bias {
            out = out.set("use_bias", false);
        }
        out.0
    }

    fn softmax(&self) -> bool {
        self.activation == Activation::Softmax
    }
}
