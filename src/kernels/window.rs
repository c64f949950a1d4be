//! Sliding-window geometry shared by convolution and pooling: TensorFlow's
//! padding modes, the one copy of its output-size rule, and the window half
//! of both shaders' override constants and launch.

use std::ops::Range;

use crate::gpu::{grid_1d_or_none, Bind, Dispatch, Gpu, KernelSpec, Result, View};

/// TensorFlow's padding modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Padding {
    /// `out = ceil(in / stride)`; the padding total is split with the extra
    /// pixel at the bottom/right.
    Same,
    /// `out = floor((in − k) / stride) + 1`; no padding.
    Valid,
}

/// (output size, padding before) along one spatial axis, or `None` for a
/// "valid" window larger than the input (no output). TensorFlow's rule:
/// "same" pads a total of `max((out − 1)·stride + k − in, 0)`, the smaller
/// half first.
pub fn window_out(
    input: usize,
    kernel: usize,
    stride: usize,
    padding: Padding,
) -> Option<(usize, usize)> {
    match padding {
        Padding::Same => {
            let out = input.div_ceil(stride);
            let total = (out.saturating_sub(1) * stride + kernel).saturating_sub(input);
            Some((out, total / 2))
        }
        Padding::Valid => (input >= kernel).then(|| ((input - kernel) / stride + 1, 0)),
    }
}

/// A `kh`×`kw` window sliding over an `in_h`×`in_w` image (sizes in pixels),
/// the part of a convolution's or pooling layer's shape that is neither
/// batch nor channels. Output sizes and padding follow [`window_out`]; a
/// "valid" window larger than the image has no output (`out_h` or `out_w`
/// 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Window2d {
    /// Image height.
    pub in_h: usize,
    /// Image width.
    pub in_w: usize,
    /// Window height.
    pub kh: usize,
    /// Window width.
    pub kw: usize,
    /// Vertical step between windows.
    pub stride_h: usize,
    /// Horizontal step between windows.
    pub stride_w: usize,
    /// How the image is padded.
    pub padding: Padding,
}

impl Window2d {
    /// One window covering the whole `in_h`×`in_w` image ("valid", stride 1):
    /// global pooling's.
    pub fn whole(in_h: usize, in_w: usize) -> Self {
        Window2d {
            in_h,
            in_w,
            kh: in_h,
            kw: in_w,
            stride_h: 1,
            stride_w: 1,
            padding: Padding::Valid,
        }
    }

    /// (out_h, pad_top).
    fn rows(&self) -> (usize, usize) {
        window_out(self.in_h, self.kh, self.stride_h, self.padding).unwrap_or((0, 0))
    }

    /// (out_w, pad_left).
    fn columns(&self) -> (usize, usize) {
        window_out(self.in_w, self.kw, self.stride_w, self.padding).unwrap_or((0, 0))
    }

    /// Output rows (window positions down the image).
    pub fn out_h(&self) -> usize {
        self.rows().0
    }

    /// Output columns (window positions across the image).
    pub fn out_w(&self) -> usize {
        self.columns().0
    }

    /// Padding rows above the image.
    pub fn pad_top(&self) -> usize {
        self.rows().1
    }

    /// Padding columns left of the image.
    pub fn pad_left(&self) -> usize {
        self.columns().1
    }

    /// Pixels of one input image, `in_h·in_w`.
    pub fn in_pixels(&self) -> usize {
        self.in_h * self.in_w
    }

    /// Pixels of one output image, `out_h·out_w`.
    pub fn out_pixels(&self) -> usize {
        self.out_h() * self.out_w()
    }

    /// Taps of one window, padding included: `kh·kw`.
    pub fn taps(&self) -> usize {
        self.kh * self.kw
    }

    /// The in-image rows and columns of the window at output pixel
    /// (`oy`, `ox`), as half-open ranges of input coordinates (empty where
    /// the window lies wholly in the padding).
    pub fn in_image(&self, oy: usize, ox: usize) -> (Range<usize>, Range<usize>) {
        let ty = (oy * self.stride_h) as isize - self.pad_top() as isize;
        let tx = (ox * self.stride_w) as isize - self.pad_left() as isize;
        let clip = |t: isize, k: usize, n: usize| {
            t.max(0) as usize..((t + k as isize).min(n as isize)).max(0) as usize
        };
        (clip(ty, self.kh, self.in_h), clip(tx, self.kw, self.in_w))
    }

    /// The window's override constants, as `conv.wgsl` and `pool.wgsl`
    /// declare them: IN_H, IN_W, OUT_H, OUT_W, KH, KW, STRIDE_H, STRIDE_W,
    /// PAD_TOP, PAD_LEFT.
    pub fn constants(&self) -> [(&'static str, f64); 10] {
        [
            ("IN_H", self.in_h as f64),
            ("IN_W", self.in_w as f64),
            ("OUT_H", self.out_h() as f64),
            ("OUT_W", self.out_w() as f64),
            ("KH", self.kh as f64),
            ("KW", self.kw as f64),
            ("STRIDE_H", self.stride_h as f64),
            ("STRIDE_W", self.stride_w as f64),
            ("PAD_TOP", self.pad_top() as f64),
            ("PAD_LEFT", self.pad_left() as f64),
        ]
    }

    /// Zero strides, window sizes or channels are programmer errors, not bad
    /// data (and divisions by zero in the shaders' constants). `op` and
    /// `geom` name the caller in the panic message.
    pub(crate) fn assert_valid(&self, op: &str, channels: usize, geom: &dyn std::fmt::Debug) {
        assert!(
            self.stride_h >= 1
                && self.stride_w >= 1
                && self.kh >= 1
                && self.kw >= 1
                && channels >= 1,
            "{op}: strides, window size and channels must be ≥ 1: {geom:?}"
        );
    }
}

/// Panics unless `buf` holds `elems` f32s.
pub(crate) fn assert_holds<'b>(op: &str, what: &str, buf: impl Bind<'b>, elems: usize) {
    assert!(
        buf.size() >= (elems * 4) as u64,
        "{op}: {what} holds {} bytes, needs {}",
        buf.size(),
        elems * 4
    );
}

/// Workgroup size of the window shaders.
const WG: u32 = 64;

/// The uniform of `conv.wgsl` and `pool.wgsl`: the work-item count.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    _pad: [u32; 3],
}

/// `n` invocations of the window shader entry `spec` over `buffers`, with
/// the window's constants, WG and the shader's channel constant `channels`
/// (name, value).
pub(crate) fn launch(
    gpu: &Gpu,
    op: &str,
    window: &Window2d,
    channels: (&'static str, usize),
    spec: &KernelSpec,
    n: usize,
    buffers: &[View<'_>],
) -> Result<Dispatch> {
    assert!(n <= u32::MAX as usize, "{op}: {n} work items overflow u32");
    let mut constants = vec![("WG", WG as f64), (channels.0, channels.1 as f64)];
    constants.extend(window.constants());
    gpu.launch(
        spec,
        &constants,
        &Params {
            n: n as u32,
            _pad: [0; 3],
        },
        buffers,
        grid_1d_or_none(n as u64, WG),
    )
}
