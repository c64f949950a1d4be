//! Conv2D (NHWC, Keras semantics) as im2col/col2im around a GEMM
//! (`shaders/conv.wgsl`). Forward is `cols(x)·W + b`, the weight gradient
//! `cols(x)ᵀ·dY`, the input gradient `col2im(dY·Wᵀ)`, with W the Keras kernel
//! [kh, kw, in_c, out_c] viewed as [kh·kw·in_c, out_c]. The GEMM lives in its
//! own module; `cpu` has a direct (no im2col) reference of the whole layer.

use crate::gpu::{grid_1d_or_none, Bind, Binding, Dispatch, Gpu, KernelSpec, Result};
use crate::shaders::CONV;

const WG: u32 = 64;
const BINDINGS: &[Binding] = &[Binding::Uniform, Binding::Storage, Binding::StorageRw];

pub static IM2COL: KernelSpec = KernelSpec {
    shader: &CONV,
    entry: "im2col",
    bindings: BINDINGS,
};
pub static IM2COL_VEC4: KernelSpec = KernelSpec {
    shader: &CONV,
    entry: "im2col_vec4",
    bindings: BINDINGS,
};
pub static COL2IM: KernelSpec = KernelSpec {
    shader: &CONV,
    entry: "col2im",
    bindings: BINDINGS,
};
pub static COL2IM_VEC4: KernelSpec = KernelSpec {
    shader: &CONV,
    entry: "col2im_vec4",
    bindings: BINDINGS,
};

use super::window::window_out;
pub use super::window::Padding;

/// The shape of one Conv2D layer applied to a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeom {
    pub batch: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub in_c: usize,
    pub out_c: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub padding: Padding,
}

impl Conv2dGeom {
    /// (out_h, pad_top); a "valid" kernel larger than the image has no output.
    fn rows(&self) -> (usize, usize) {
        window_out(self.in_h, self.kh, self.stride_h, self.padding).unwrap_or((0, 0))
    }

    fn columns(&self) -> (usize, usize) {
        window_out(self.in_w, self.kw, self.stride_w, self.padding).unwrap_or((0, 0))
    }

    pub fn out_h(&self) -> usize {
        self.rows().0
    }

    pub fn out_w(&self) -> usize {
        self.columns().0
    }

    pub fn pad_top(&self) -> usize {
        self.rows().1
    }

    pub fn pad_left(&self) -> usize {
        self.columns().1
    }

    /// Rows of the im2col matrix: one per output pixel, batch·out_h·out_w.
    pub fn col_rows(&self) -> usize {
        self.batch * self.out_h() * self.out_w()
    }

    /// Columns of the im2col matrix: one per kernel tap and channel, kh·kw·in_c.
    pub fn col_cols(&self) -> usize {
        self.kh * self.kw * self.in_c
    }

    /// Elements of x (NHWC).
    pub fn input_len(&self) -> usize {
        self.batch * self.in_h * self.in_w * self.in_c
    }

    /// Elements of y (NHWC).
    pub fn output_len(&self) -> usize {
        self.col_rows() * self.out_c
    }

    /// Elements of the kernel [kh, kw, in_c, out_c].
    pub fn weight_len(&self) -> usize {
        self.col_cols() * self.out_c
    }

    /// Zero stride, kernel size or channels is a programmer error, not bad data
    /// (and would be a division by zero in the shader's constants).
    fn assert_valid(&self) {
        assert!(
            self.stride_h >= 1
                && self.stride_w >= 1
                && self.kh >= 1
                && self.kw >= 1
                && self.in_c >= 1,
            "conv2d: stride, kernel size and channels must be ≥ 1: {self:?}"
        );
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    _pad: [u32; 3],
}

/// The shader's override constants: the geometry, baked into the pipeline.
fn constants(g: &Conv2dGeom) -> [(&'static str, f64); 12] {
    [
        ("WG", WG as f64),
        ("IN_H", g.in_h as f64),
        ("IN_W", g.in_w as f64),
        ("IN_C", g.in_c as f64),
        ("OUT_H", g.out_h() as f64),
        ("OUT_W", g.out_w() as f64),
        ("KH", g.kh as f64),
        ("KW", g.kw as f64),
        ("STRIDE_H", g.stride_h as f64),
        ("STRIDE_W", g.stride_w as f64),
        ("PAD_TOP", g.pad_top() as f64),
        ("PAD_LEFT", g.pad_left() as f64),
    ]
}

fn assert_holds<'b>(what: &str, buf: impl Bind<'b>, elems: usize) {
    assert!(
        buf.size() >= (elems * 4) as u64,
        "conv2d: {what} holds {} bytes, needs {}",
        buf.size(),
        elems * 4
    );
}

/// `n` invocations of `spec`.
fn build<'b>(
    gpu: &Gpu,
    g: &Conv2dGeom,
    spec: &KernelSpec,
    n: usize,
    src: impl Bind<'b>,
    dst: impl Bind<'b>,
) -> Result<Dispatch> {
    assert!(
        n <= u32::MAX as usize,
        "conv2d: {n} work items overflow u32"
    );
    gpu.launch(
        spec,
        &constants(g),
        &Params {
            n: n as u32,
            _pad: [0; 3],
        },
        &[src.view(), dst.view()],
        grid_1d_or_none(n as u64, WG),
    )
}

/// cols[row = (b, oy, ox), col = (ky, kx, c)] =
/// x[b, oy·stride_h − pad_top + ky, ox·stride_w − pad_left + kx, c], or 0 in the padding.
/// `x` is NHWC; `cols` is [col_rows, col_cols] row-major and fully overwritten.
pub fn im2col<'b>(
    gpu: &Gpu,
    g: &Conv2dGeom,
    x: impl Bind<'b>,
    cols: impl Bind<'b>,
) -> Result<Dispatch> {
    g.assert_valid();
    let n = g.col_rows() * g.col_cols();
    assert_holds("x", x, g.input_len());
    assert_holds("cols", cols, n);
    if g.in_c % 4 == 0 {
        // One invocation per vec4 of cols.
        build(gpu, g, &IM2COL_VEC4, n / 4, x, cols)
    } else {
        // One invocation per (output pixel, kernel row).
        build(gpu, g, &IM2COL, g.col_rows() * g.kh, x, cols)
    }
}

/// dx[b, y, x, c] = Σ of dcols[row, col] over the (row, col) that im2col
/// maps to it; overwrites dx. A gather (each dx element sums its at most
/// kh·kw contributors in a fixed order), so no atomics and deterministic.
pub fn col2im<'b>(
    gpu: &Gpu,
    g: &Conv2dGeom,
    dcols: impl Bind<'b>,
    dx: impl Bind<'b>,
) -> Result<Dispatch> {
    g.assert_valid();
    assert_holds("dcols", dcols, g.col_rows() * g.col_cols());
    assert_holds("dx", dx, g.input_len());
    // One invocation per element of dx, or per vec4.
    if g.in_c % 4 == 0 {
        build(gpu, g, &COL2IM_VEC4, g.input_len() / 4, dcols, dx)
    } else {
        build(gpu, g, &COL2IM, g.input_len(), dcols, dx)
    }
}

/// Plain-Rust references. The whole-layer functions accumulate in f64 and
/// have f64 twins (`*_f64`) for finite-difference gradient checks.
pub mod cpu {
    use super::Conv2dGeom;

    /// Calls `f(x_index, col)` for every in-image tap of output pixel `row`;
    /// taps in the zero padding are skipped.
    fn for_taps(g: &Conv2dGeom, row: usize, mut f: impl FnMut(usize, usize)) {
        let (oh, ow) = (g.out_h(), g.out_w());
        let (ox, oy, b) = (row % ow, (row / ow) % oh, row / (ow * oh));
        for ky in 0..g.kh {
            let iy = (oy * g.stride_h + ky) as isize - g.pad_top() as isize;
            if iy < 0 || iy >= g.in_h as isize {
                continue;
            }
            for kx in 0..g.kw {
                let ix = (ox * g.stride_w + kx) as isize - g.pad_left() as isize;
                if ix < 0 || ix >= g.in_w as isize {
                    continue;
                }
                let base = ((b * g.in_h + iy as usize) * g.in_w + ix as usize) * g.in_c;
                let col = (ky * g.kw + kx) * g.in_c;
                for c in 0..g.in_c {
                    f(base + c, col + c);
                }
            }
        }
    }

    pub fn im2col(g: &Conv2dGeom, x: &[f32]) -> Vec<f32> {
        assert_eq!(x.len(), g.input_len(), "im2col: x length");
        let k = g.col_cols();
        let mut cols = vec![0.0; g.col_rows() * k];
        for row in 0..g.col_rows() {
            for_taps(g, row, |xi, col| cols[row * k + col] = x[xi]);
        }
        cols
    }

    /// Scatter-add of every cols entry back to its pixel, summed in f64.
    pub fn col2im(g: &Conv2dGeom, dcols: &[f32]) -> Vec<f32> {
        let k = g.col_cols();
        assert_eq!(dcols.len(), g.col_rows() * k, "col2im: dcols length");
        let mut dx = vec![0.0f64; g.input_len()];
        for row in 0..g.col_rows() {
            for_taps(g, row, |xi, col| dx[xi] += dcols[row * k + col] as f64);
        }
        dx.into_iter().map(|v| v as f32).collect()
    }

    fn widen(v: &[f32]) -> Vec<f64> {
        v.iter().map(|&a| a as f64).collect()
    }

    fn narrow(v: Vec<f64>) -> Vec<f32> {
        v.into_iter().map(|a| a as f32).collect()
    }

    /// y[b, oy, ox, o] = bias[o] + Σ_{ky,kx,c} x[b, iy, ix, c]·w[ky, kx, c, o]
    /// directly from the definition. Weights in Keras layout
    /// [kh, kw, in_c, out_c]; y is NHWC [batch, out_h, out_w, out_c].
    pub fn conv2d_forward(g: &Conv2dGeom, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
        narrow(conv2d_forward_f64(g, &widen(x), &widen(w), &widen(bias)))
    }

    /// (dx, dw, db) for upstream gradient dy (NHWC, like y).
    pub fn conv2d_backward(
        g: &Conv2dGeom,
        x: &[f32],
        w: &[f32],
        dy: &[f32],
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (dx, dw, db) = conv2d_backward_f64(g, &widen(x), &widen(w), &widen(dy));
        (narrow(dx), narrow(dw), narrow(db))
    }

    pub fn conv2d_forward_f64(g: &Conv2dGeom, x: &[f64], w: &[f64], bias: &[f64]) -> Vec<f64> {
        assert_eq!(x.len(), g.input_len(), "conv2d_forward: x length");
        assert_eq!(w.len(), g.weight_len(), "conv2d_forward: w length");
        assert_eq!(bias.len(), g.out_c, "conv2d_forward: bias length");
        let oc = g.out_c;
        let mut y = vec![0.0; g.output_len()];
        for row in 0..g.col_rows() {
            let out = &mut y[row * oc..(row + 1) * oc];
            out.copy_from_slice(bias);
            for_taps(g, row, |xi, col| {
                let xv = x[xi];
                for (o, wv) in out.iter_mut().zip(&w[col * oc..(col + 1) * oc]) {
                    *o += xv * wv;
                }
            });
        }
        y
    }

    pub fn conv2d_backward_f64(
        g: &Conv2dGeom,
        x: &[f64],
        w: &[f64],
        dy: &[f64],
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        assert_eq!(x.len(), g.input_len(), "conv2d_backward: x length");
        assert_eq!(w.len(), g.weight_len(), "conv2d_backward: w length");
        assert_eq!(dy.len(), g.output_len(), "conv2d_backward: dy length");
        let oc = g.out_c;
        let mut dx = vec![0.0; x.len()];
        let mut dw = vec![0.0; w.len()];
        let mut db = vec![0.0; oc];
        for row in 0..g.col_rows() {
            let d = &dy[row * oc..(row + 1) * oc];
            for (acc, v) in db.iter_mut().zip(d) {
                *acc += v;
            }
            for_taps(g, row, |xi, col| {
                let wrow = &w[col * oc..(col + 1) * oc];
                dx[xi] += d.iter().zip(wrow).map(|(a, b)| a * b).sum::<f64>();
                let xv = x[xi];
                for (acc, dv) in dw[col * oc..(col + 1) * oc].iter_mut().zip(d) {
                    *acc += xv * dv;
                }
            });
        }
        (dx, dw, db)
    }
}
