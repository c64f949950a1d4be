//! `MaxPooling2D` and `AveragePooling2D(pool_size, strides, padding)`,
//! NHWC, with TensorFlow's semantics: strides default to the pool size;
//! "same" padding pads as Conv2D does, max pooling never picks a padded tap
//! and average pooling divides by the in-image taps only.

use serde_json::{Map, Value};

use super::conv2d::{padding_arg, padding_name, window_shape};
use super::{Args, Layer};
use crate::graph::args::ArgsOut;
use crate::graph::error::GraphError;
use crate::graph::lower::Lowering;
use crate::graph::model::NodeId;
use crate::graph::program::{Inst, TensorId};
use crate::kernels::pool::Pool2dGeom;
use crate::kernels::window::{Padding, Window2d};

/// Which pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// The maximum of each window's in-image taps.
    Max,
    /// The mean of each window's in-image taps (padding not counted).
    Average,
}

/// `MaxPooling2D` / `AveragePooling2D(pool_size, strides, padding)`, NHWC.
#[derive(Clone, Debug, PartialEq)]
pub struct Pool2d {
    /// Max or average.
    pub kind: PoolKind,
    /// Window [height, width].
    pub pool_size: [usize; 2],
    /// Steps [down, across]; Keras's default is `pool_size`.
    pub strides: [usize; 2],
    /// Keras's default is "valid".
    pub padding: Padding,
}

impl Pool2d {
    /// `size`×`size` windows with stride `size`, "valid".
    pub fn new(kind: PoolKind, size: usize) -> Self {
        Pool2d {
            kind,
            pool_size: [size, size],
            strides: [size, size],
            padding: Padding::Valid,
        }
    }

    /// From Keras's arguments; unsupported ones are errors.
    pub fn from_args(kind: PoolKind, a: &mut Args) -> Result<Self, GraphError> {
        let pool_size = a.pair("pool_size", Some([2, 2]))?;
        let strides = a.optional_pair("strides")?.unwrap_or(pool_size);
        let padding = padding_arg(a, "valid")?;
        a.default_only("data_format", "channels_last".into(), "\"channels_last\"")?;
        Ok(Pool2d {
            kind,
            pool_size,
            strides,
            padding,
        })
    }

    /// The kernel geometry for `batch` inputs of shape `input` [h, w, c].
    pub fn geom(&self, batch: usize, input: &[usize]) -> Pool2dGeom {
        Pool2dGeom {
            batch,
            channels: input[2],
            window: Window2d {
                in_h: input[0],
                in_w: input[1],
                kh: self.pool_size[0],
                kw: self.pool_size[1],
                stride_h: self.strides[0],
                stride_w: self.strides[1],
                padding: self.padding,
            },
        }
    }
}

/// Forward of a pooling window `geom` from input 0 of `node`.
pub(super) fn pool_forward(
    cx: &mut Lowering,
    node: NodeId,
    kind: PoolKind,
    geom: Pool2dGeom,
) -> TensorId {
    let x = cx.input(node, 0);
    let name = cx.name(node).to_owned();
    let y = cx.act(name, cx.per_example(node));
    cx.emit(Inst::Pool { geom, kind, x, y });
    y
}

pub(super) fn pool_backward(
    cx: &mut Lowering,
    node: NodeId,
    kind: PoolKind,
    geom: Pool2dGeom,
    dy: TensorId,
) {
    if !cx.needs_grad(node, 0) {
        return;
    }
    let dx = cx.grad_temp(node, 0);
    cx.emit(Inst::PoolBackward {
        geom,
        kind,
        x: cx.input(node, 0),
        dy,
        dx,
    });
    cx.add_grad(node, 0, dx);
}

impl Layer for Pool2d {
    fn class(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "MaxPooling2D",
            PoolKind::Average => "AveragePooling2D",
        }
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        let [oh, ow] = window_shape(
            inputs[0],
            self.pool_size,
            self.strides,
            self.padding,
            "pool",
        )?;
        Ok(vec![oh, ow, inputs[0][2]])
    }

    fn forward(&self, cx: &mut Lowering, node: NodeId) -> TensorId {
        let g = self.geom(cx.batch, cx.input_shape(node, 0));
        pool_forward(cx, node, self.kind, g)
    }

    fn backward(&self, cx: &mut Lowering, node: NodeId, dy: TensorId) {
        let g = self.geom(cx.batch, cx.input_shape(node, 0));
        pool_backward(cx, node, self.kind, g, dy);
    }

    fn to_args(&self) -> Map<String, Value> {
        ArgsOut::default()
            .pair("pool_size", self.pool_size)
            .pair("strides", self.strides)
            .set("padding", padding_name(self.padding))
            .0
    }
}
