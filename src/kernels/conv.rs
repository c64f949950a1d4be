//! Conv2D (NHWC, Keras semantics) as im2col/col2im around a GEMM
//! (`shaders/conv.wgsl`). Forward is `cols(x)·W + b`, the weight gradient
//! `cols(x)ᵀ·dY`, the input gradient `col2im(dY·Wᵀ)`, with W the Keras kernel
//! [kh, kw, in_c, out_c] viewed as [kh·kw·in_c, out_c]. The GEMM lives in its
//! own module; `cpu` has a direct (no im2col) reference of the whole layer.

use super::gemm::{self, Epilogue, GemmShape};
use super::window::{assert_holds, launch, Window2d};
use crate::gpu::{Bind, Binding, Dispatch, Gpu, KernelSpec, Result, View};
use crate::shaders::CONV;

const BINDINGS: &[Binding] = &[Binding::Uniform, Binding::Storage, Binding::StorageRw];

/// `conv.wgsl`'s `im2col`: one invocation per (output pixel, kernel row).
pub static IM2COL: KernelSpec = KernelSpec {
    shader: &CONV,
    entry: "im2col",
    bindings: BINDINGS,
};
/// `conv.wgsl`'s `im2col_vec4`: one invocation per vec4 of cols (in_c % 4 == 0).
pub static IM2COL_VEC4: KernelSpec = KernelSpec {
    shader: &CONV,
    entry: "im2col_vec4",
    bindings: BINDINGS,
};
/// `conv.wgsl`'s `col2im`: one invocation per element of dx.
pub static COL2IM: KernelSpec = KernelSpec {
    shader: &CONV,
    entry: "col2im",
    bindings: BINDINGS,
};
/// `conv.wgsl`'s `col2im_vec4`: one invocation per vec4 of dx (in_c % 4 == 0).
pub static COL2IM_VEC4: KernelSpec = KernelSpec {
    shader: &CONV,
    entry: "col2im_vec4",
    bindings: BINDINGS,
};

pub use super::window::Padding;

/// The shape of one Conv2D layer applied to a batch: NHWC input
/// [batch, in_h, in_w, in_c], output [batch, out_h, out_w, out_c].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dGeom {
    /// Images in the batch.
    pub batch: usize,
    /// Input channels.
    pub in_c: usize,
    /// Output channels (filters).
    pub out_c: usize,
    /// Image size, kernel size, strides and padding.
    pub window: Window2d,
}

/// One stride phase of a convolution's input gradient
/// ([`Conv2dGeom::input_grad_phases`]): its input pixels gather dY only
/// through the taps whose offset from them is a multiple of the strides
/// (ky ≡ py + pad_top, kx ≡ px + pad_left), the only ones that land on an
/// output pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StridePhase {
    /// The phase's pixels are (py + stride_h·yy, px + stride_w·xx) ...
    pub py: usize,
    /// ... (the column phase) ...
    pub px: usize,
    /// ... for yy < rows ...
    pub rows: usize,
    /// ... and xx < cols.
    pub cols: usize,
    /// Its taps are (ky0 + stride_h·ty, kx0 + stride_w·tx) ...
    pub ky0: usize,
    /// ... (the first tap's column) ...
    pub kx0: usize,
    /// ... for ty < taps_h ...
    pub taps_h: usize,
    /// ... and tx < taps_w.
    pub taps_w: usize,
}

impl StridePhase {
    /// Taps in the phase.
    pub fn taps(&self) -> usize {
        self.taps_h * self.taps_w
    }
}

impl Conv2dGeom {
    /// Rows of the im2col matrix: one per output pixel, batch·out_h·out_w.
    pub fn col_rows(&self) -> usize {
        self.batch * self.window.out_pixels()
    }

    /// Columns of the im2col matrix: one per kernel tap and channel, kh·kw·in_c.
    pub fn col_cols(&self) -> usize {
        self.window.taps() * self.in_c
    }

    /// Elements of x (NHWC).
    pub fn input_len(&self) -> usize {
        self.batch * self.window.in_pixels() * self.in_c
    }

    /// Elements of y (NHWC).
    pub fn output_len(&self) -> usize {
        self.col_rows() * self.out_c
    }

    /// Elements of the kernel [kh, kw, in_c, out_c].
    pub fn weight_len(&self) -> usize {
        self.col_cols() * self.out_c
    }

    /// The input gradient's stride phases: the input pixels split by
    /// (iy mod stride_h, ix mod stride_w), each meeting output pixels through
    /// a fixed subset of the taps, so each is a GEMM over just those taps
    /// (at stride 2, a quarter of the work of taking every tap and zeroing
    /// those that meet no output pixel). Phases without pixels are left out;
    /// one without taps (a stride past the kernel) stays: its dx is zero.
    pub fn input_grad_phases(&self) -> Vec<StridePhase> {
        let w = &self.window;
        // (phase, its pixels along the axis, first tap, taps along the axis).
        let axis = |size: usize, k: usize, stride: usize, pad: usize| {
            (0..stride.min(size))
                .map(move |ph| {
                    let first = (ph + pad) % stride;
                    let taps = if first < k {
                        (k - first).div_ceil(stride)
                    } else {
                        0
                    };
                    (ph, (size - ph).div_ceil(stride), first, taps)
                })
                .collect::<Vec<_>>()
        };
        let ys = axis(w.in_h, w.kh, w.stride_h, w.pad_top());
        let xs = axis(w.in_w, w.kw, w.stride_w, w.pad_left());
        let mut v = Vec::new();
        for &(py, rows, ky0, taps_h) in &ys {
            for &(px, cols, kx0, taps_w) in &xs {
                v.push(StridePhase {
                    py,
                    px,
                    rows,
                    cols,
                    ky0,
                    kx0,
                    taps_h,
                    taps_w,
                });
            }
        }
        v
    }

    /// `n` invocations of `spec` reading `src` and writing `dst`.
    fn launch<'b>(
        &self,
        gpu: &Gpu,
        spec: &KernelSpec,
        n: usize,
        src: impl Bind<'b>,
        dst: impl Bind<'b>,
    ) -> Result<Dispatch> {
        self.window.assert_valid("conv2d", self.in_c, self);
        let buffers = [src.view(), dst.view()];
        launch(
            gpu,
            "conv2d",
            &self.window,
            ("IN_C", self.in_c),
            spec,
            n,
            &buffers,
        )
    }
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
    let n = g.col_rows() * g.col_cols();
    assert_holds("conv2d", "x", x, g.input_len());
    assert_holds("conv2d", "cols", cols, n);
    if g.in_c % 4 == 0 {
        g.launch(gpu, &IM2COL_VEC4, n / 4, x, cols)
    } else {
        g.launch(gpu, &IM2COL, g.col_rows() * g.window.kh, x, cols)
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
    assert_holds("conv2d", "dcols", dcols, g.col_rows() * g.col_cols());
    assert_holds("conv2d", "dx", dx, g.input_len());
    if g.in_c % 4 == 0 {
        g.launch(gpu, &COL2IM_VEC4, g.input_len() / 4, dcols, dx)
    } else {
        g.launch(gpu, &COL2IM, g.input_len(), dcols, dx)
    }
}

/// One of a convolution's three GEMMs in training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvPass {
    /// y = im2col(x)·W (+ bias).
    Forward,
    /// dW = im2col(x)ᵀ·dY (+ db).
    WeightGrad,
    /// dX = col2im(dY·Wᵀ).
    InputGrad,
}

impl ConvPass {
    /// "fwd", "dw", "dx".
    pub fn name(self) -> &'static str {
        match self {
            ConvPass::Forward => "fwd",
            ConvPass::WeightGrad => "dw",
            ConvPass::InputGrad => "dx",
        }
    }

    /// The GEMM the explicit method runs: forward cols·W (NN), weight
    /// gradient colsᵀ·dY (TN), input gradient dY·Wᵀ (NT).
    pub fn gemm_shape(self, g: &Conv2dGeom) -> GemmShape {
        let (rows, cols) = (g.col_rows(), g.col_cols());
        match self {
            ConvPass::Forward => GemmShape::new(rows, g.out_c, cols, false, false),
            ConvPass::WeightGrad => GemmShape::new(cols, g.out_c, rows, true, false),
            ConvPass::InputGrad => GemmShape::new(rows, cols, g.out_c, false, true),
        }
    }
}

/// How one pass runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvMethod {
    /// The subgroup GEMM reading x (or gathering dY) by index arithmetic:
    /// one dispatch, no im2col matrix (`gemm::conv_*_implicit`).
    Implicit,
    /// The im2col matrix (built, or for the weight gradient reused from the
    /// forward pass), a GEMM, and for the input gradient col2im.
    Im2col,
}

impl ConvMethod {
    /// Whether a forward pass run this way leaves im2col(x) in `cols` for
    /// the weight gradient to reuse (see [`weight_grad`]'s `cols_built`).
    pub fn leaves_cols(self) -> bool {
        self == ConvMethod::Im2col
    }

    /// "implicit", "im2col": the tune cache's names.
    pub fn label(self) -> &'static str {
        match self {
            ConvMethod::Implicit => "implicit",
            ConvMethod::Im2col => "im2col",
        }
    }

    /// Whether `pass` of `g` can run this way on this device: the implicit
    /// kernels need 8-lane subgroups, for the input gradient out_c % 4 == 0
    /// (dY gathered in vec4s; x is gathered element by element where in_c
    /// is not a multiple of 4), and on software adapters a K within
    /// `gemm::max_k_per_dispatch`.
    pub fn available(self, gpu: &Gpu, g: &Conv2dGeom, pass: ConvPass) -> bool {
        match self {
            ConvMethod::Im2col => true,
            ConvMethod::Implicit => {
                // x is gathered element by element where its channels do
                // not make whole vec4s; dY only in vec4s.
                let gathers = pass != ConvPass::InputGrad || g.out_c % 4 == 0;
                // The kernel loops over K in one invocation: past a
                // software adapter's loop limit it cannot run.
                let k = match pass {
                    ConvPass::Forward => g.col_cols(),
                    ConvPass::WeightGrad => g.col_rows(),
                    ConvPass::InputGrad => g.window.taps() * g.out_c,
                };
                let fits = gemm::max_k_per_dispatch(gpu, gemm::Variant::Subgroup)
                    .is_none_or(|limit| k <= limit);
                gemm::variant_available(gpu, gemm::Variant::Subgroup)
                    && gathers
                    && g.col_rows() >= 1
                    && fits
            }
        }
    }

    /// The built-in choice: implicit where the subgroup kernel is the
    /// adapter's GEMM (measured on lavapipe, batch 32, 3×3: every pass of the
    /// CNN at 32–43 GFLOP/s in place; the weight gradient at 64 filters 1.25
    /// and 1.47× faster than im2col and the packed GEMM), else im2col.
    pub fn builtin(gpu: &Gpu, g: &Conv2dGeom, pass: ConvPass) -> Self {
        if gemm::auto_variant(gpu) == gemm::Variant::Subgroup
            && ConvMethod::Implicit.available(gpu, g, pass)
        {
            ConvMethod::Implicit
        } else {
            ConvMethod::Im2col
        }
    }

    /// Every method `pass` of `g` can run with on this device, the built-in
    /// first.
    pub fn candidates(gpu: &Gpu, g: &Conv2dGeom, pass: ConvPass) -> Vec<Self> {
        let first = Self::builtin(gpu, g, pass);
        let mut v = vec![first];
        for m in [ConvMethod::Implicit, ConvMethod::Im2col] {
            if m != first && m.available(gpu, g, pass) {
                v.push(m);
            }
        }
        v
    }
}

/// y = im2col(x)·W (+ bias) then `epilogue`: the forward pass, reading x in
/// place ([`ConvMethod::Implicit`]) or building im2col(x) in `cols` first
/// (which [`weight_grad`] then reads); `config` is the explicit method's
/// GEMM ([`ConvPass::gemm_shape`]).
#[allow(clippy::too_many_arguments)]
pub fn forward<'b>(
    gpu: &Gpu,
    g: &Conv2dGeom,
    (method, config): (ConvMethod, gemm::GemmConfig),
    x: View<'b>,
    cols: View<'b>,
    w: View<'b>,
    bias: Option<View<'b>>,
    y: View<'b>,
    epilogue: Epilogue,
) -> Result<Vec<Dispatch>> {
    if method == ConvMethod::Implicit {
        return gemm::conv_forward_implicit(gpu, g, x, w, bias, y, epilogue);
    }
    let mut d = vec![im2col(gpu, g, x, cols)?];
    let shape = ConvPass::Forward.gemm_shape(g);
    d.extend(gemm::gemm_config(
        gpu, config, shape, cols, w, bias, y, epilogue, false,
    )?);
    Ok(d)
}

/// dw = im2col(x)ᵀ·dy and, with db, the bias gradient (dy's column sums):
/// from x in place ([`ConvMethod::Implicit`]), or from `cols`, which is
/// built here unless `cols_built` (the forward pass built it).
#[allow(clippy::too_many_arguments)]
pub fn weight_grad<'b>(
    gpu: &Gpu,
    g: &Conv2dGeom,
    (method, config): (ConvMethod, gemm::GemmConfig),
    cols_built: bool,
    x: View<'b>,
    cols: View<'b>,
    dy: View<'b>,
    dw: View<'b>,
    db: Option<View<'b>>,
) -> Result<Vec<Dispatch>> {
    if method == ConvMethod::Implicit {
        return gemm::conv_weight_grad_implicit(gpu, g, x, dy, dw, db);
    }
    let mut d = Vec::new();
    if !cols_built {
        d.push(im2col(gpu, g, x, cols)?);
    }
    let shape = ConvPass::WeightGrad.gemm_shape(g);
    d.extend(match db {
        Some(db) => gemm::gemm_bias_grad(gpu, config, shape, [cols, dy, dw, db]),
        None => gemm::gemm_config(
            gpu,
            config,
            shape,
            cols,
            dy,
            None,
            dw,
            Epilogue::None,
            false,
        ),
    }?);
    Ok(d)
}

/// dx = col2im(dy·Wᵀ): the input gradient, in one dispatch
/// ([`ConvMethod::Implicit`]) or through `dcols`.
#[allow(clippy::too_many_arguments)]
pub fn input_grad<'b>(
    gpu: &Gpu,
    g: &Conv2dGeom,
    (method, config): (ConvMethod, gemm::GemmConfig),
    dy: View<'b>,
    w: View<'b>,
    dcols: View<'b>,
    dx: View<'b>,
) -> Result<Vec<Dispatch>> {
    if method == ConvMethod::Implicit {
        return gemm::conv_input_grad_implicit(gpu, g, dy, w, dx);
    }
    let shape = ConvPass::InputGrad.gemm_shape(g);
    let mut d = gemm::gemm_config(
        gpu,
        config,
        shape,
        dy,
        w,
        None,
        dcols,
        Epilogue::None,
        false,
    )?;
    d.push(col2im(gpu, g, dcols, dx)?);
    Ok(d)
}

/// Plain-Rust references. The whole-layer functions accumulate in f64 and
/// have f64 twins (`*_f64`) for finite-difference gradient checks.
pub mod cpu {
    use super::Conv2dGeom;
    use crate::kernels::gemm::{self, Epilogue, GemmShape};

    /// Calls `f(x_index, col)` for every in-image tap of output pixel `row`;
    /// taps in the zero padding are skipped.
    fn for_taps(g: &Conv2dGeom, row: usize, mut f: impl FnMut(usize, usize)) {
        let w = &g.window;
        let (oh, ow) = (w.out_h(), w.out_w());
        let (ox, oy, b) = (row % ow, (row / ow) % oh, row / (ow * oh));
        let (rows, cols) = w.in_image(oy, ox);
        // Window tap (ky, kx) of input pixel (iy, ix).
        let (y0, x0) = (oy * w.stride_h, ox * w.stride_w);
        for iy in rows {
            let ky = iy + w.pad_top() - y0;
            for ix in cols.clone() {
                let kx = ix + w.pad_left() - x0;
                let base = ((b * w.in_h + iy) * w.in_w + ix) * g.in_c;
                let col = (ky * w.kw + kx) * g.in_c;
                for c in 0..g.in_c {
                    f(base + c, col + c);
                }
            }
        }
    }

    /// cols = im2col(x), as the kernel: [col_rows, col_cols] row-major, zeros in the padding.
    pub fn im2col(g: &Conv2dGeom, x: &[f32]) -> Vec<f32> {
        let mut cols = vec![0.0; g.col_rows() * g.col_cols()];
        im2col_into(g, x, &mut cols);
        cols
    }

    /// [`im2col`] into `cols`, one image per chunk, on all threads.
    pub fn im2col_into(g: &Conv2dGeom, x: &[f32], cols: &mut [f32]) {
        assert_eq!(x.len(), g.input_len(), "im2col: x length");
        let k = g.col_cols();
        assert_eq!(cols.len(), g.col_rows() * k, "im2col: cols length");
        let rows = g.window.out_pixels();
        crate::par::chunks_mut(cols, rows * k, |b, cols| {
            cols.fill(0.0);
            for r in 0..rows {
                for_taps(g, b * rows + r, |xi, col| cols[r * k + col] = x[xi]);
            }
        });
    }

    /// The forward pass as the CPU backend runs it: `cols` = im2col(x), then
    /// y = cols·W (+ bias) and the epilogue (the GEMM reference).
    pub fn forward_into(
        g: &Conv2dGeom,
        x: &[f32],
        cols: &mut [f32],
        w: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
        epilogue: Epilogue,
    ) {
        im2col_into(g, x, cols);
        let shape = GemmShape::new(g.col_rows(), g.out_c, g.col_cols(), false, false);
        gemm::cpu::gemm(shape, cols, w, bias, y, epilogue, false);
    }

    /// dw = colsᵀ·dy, from the `cols` that [`forward_into`] built.
    pub fn weight_grad_from_cols(g: &Conv2dGeom, cols: &[f32], dy: &[f32], dw: &mut [f32]) {
        let shape = GemmShape::new(g.col_cols(), g.out_c, g.col_rows(), true, false);
        gemm::cpu::gemm(shape, cols, dy, None, dw, Epilogue::None, false);
    }

    /// The input gradient as the CPU backend runs it: `dcols` = dy·Wᵀ, then
    /// dx = col2im(dcols).
    pub fn input_grad_into(
        g: &Conv2dGeom,
        dy: &[f32],
        w: &[f32],
        dcols: &mut [f32],
        dx: &mut [f32],
    ) {
        let shape = GemmShape::new(g.col_rows(), g.col_cols(), g.out_c, false, true);
        gemm::cpu::gemm(shape, dy, w, None, dcols, Epilogue::None, false);
        col2im_into(g, dcols, dx);
    }

    /// Scatter-add of every cols entry back to its pixel, summed in f64.
    pub fn col2im(g: &Conv2dGeom, dcols: &[f32]) -> Vec<f32> {
        let mut dx = vec![0.0; g.input_len()];
        col2im_into(g, dcols, &mut dx);
        dx
    }

    /// [`col2im`] into `dx`, one image per chunk (an image's rows touch only
    /// its pixels, so each sum keeps its order), on all threads.
    pub fn col2im_into(g: &Conv2dGeom, dcols: &[f32], dx: &mut [f32]) {
        let k = g.col_cols();
        assert_eq!(dcols.len(), g.col_rows() * k, "col2im: dcols length");
        assert_eq!(dx.len(), g.input_len(), "col2im: dx length");
        let rows = g.window.out_pixels();
        let img = g.window.in_pixels() * g.in_c;
        crate::par::chunks_mut(dx, img, |b, dx| {
            let mut acc = vec![0.0f64; img];
            for r in 0..rows {
                let row = b * rows + r;
                let d = &dcols[row * k..(row + 1) * k];
                for_taps(g, row, |xi, col| acc[xi - b * img] += d[col] as f64);
            }
            for (o, v) in dx.iter_mut().zip(acc) {
                *o = v as f32;
            }
        });
    }

    fn widen(v: &[f32]) -> Vec<f64> {
        v.iter().map(|&a| a as f64).collect()
    }

    fn narrow(v: Vec<f64>) -> Vec<f32> {
        v.into_iter().map(|a| a as f32).collect()
    }

    /// `y[b, oy, ox, o] = bias[o] + Σ_{ky,kx,c} x[b, iy, ix, c]·w[ky, kx, c, o]`
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

    /// `conv2d_forward` in f64 throughout.
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

    /// `conv2d_backward` in f64 throughout.
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
