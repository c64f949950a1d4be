//! 2-D max and average pooling over NHWC with TensorFlow semantics
//! (`shaders/pool.wgsl`). Max pooling never picks a padding tap and breaks
//! ties toward the first maximum in window scan order (ky, then kx); average
//! pooling divides by the in-image taps only. Both backward passes are
//! gathers that recompute what they need (the argmax, the divisor), so
//! nothing is stored between the passes. GlobalAveragePooling2D is average
//! pooling with the window the whole image and "valid" padding.

use super::window::{window_out, Padding};
use crate::gpu::{grid_1d_or_none, Bind, Binding, Dispatch, Gpu, KernelSpec, Result, View};
use crate::shaders::POOL;

const WG: u32 = 64;
const IN_OUT: &[Binding] = &[Binding::Uniform, Binding::Storage, Binding::StorageRw];

pub static MAX_FORWARD: KernelSpec = KernelSpec {
    shader: &POOL,
    entry: "max_forward",
    bindings: IN_OUT,
};
pub static MAX_BACKWARD: KernelSpec = KernelSpec {
    shader: &POOL,
    entry: "max_backward",
    bindings: &[
        Binding::Uniform,
        Binding::Storage,
        Binding::Storage,
        Binding::StorageRw,
    ],
};
pub static AVG_FORWARD: KernelSpec = KernelSpec {
    shader: &POOL,
    entry: "avg_forward",
    bindings: IN_OUT,
};
pub static AVG_BACKWARD: KernelSpec = KernelSpec {
    shader: &POOL,
    entry: "avg_backward",
    bindings: IN_OUT,
};

/// The shape of one pooling layer applied to a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dGeom {
    pub batch: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub channels: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub padding: Padding,
}

impl Pool2dGeom {
    /// GlobalAveragePooling2D's window: the whole image.
    pub fn global(batch: usize, in_h: usize, in_w: usize, channels: usize) -> Self {
        Pool2dGeom {
            batch,
            in_h,
            in_w,
            channels,
            kh: in_h,
            kw: in_w,
            stride_h: 1,
            stride_w: 1,
            padding: Padding::Valid,
        }
    }

    /// (out_h, pad_top); a "valid" window larger than the image has no output.
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

    /// Elements of x (NHWC).
    pub fn input_len(&self) -> usize {
        self.batch * self.in_h * self.in_w * self.channels
    }

    /// Elements of y (NHWC).
    pub fn output_len(&self) -> usize {
        self.batch * self.out_h() * self.out_w() * self.channels
    }

    /// The in-image rows and columns of window (oy, ox), as half-open ranges.
    pub fn window(&self, oy: usize, ox: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let ty = (oy * self.stride_h) as isize - self.pad_top() as isize;
        let tx = (ox * self.stride_w) as isize - self.pad_left() as isize;
        let clip = |t: isize, k: usize, n: usize| {
            t.max(0) as usize..((t + k as isize).min(n as isize)).max(0) as usize
        };
        (clip(ty, self.kh, self.in_h), clip(tx, self.kw, self.in_w))
    }

    /// Zero sizes or strides are programmer errors (and divisions by zero in
    /// the shader's constants).
    fn assert_valid(&self) {
        assert!(
            self.stride_h >= 1
                && self.stride_w >= 1
                && self.kh >= 1
                && self.kw >= 1
                && self.channels >= 1,
            "pool2d: strides, window and channels must be ≥ 1: {self:?}"
        );
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    _pad: [u32; 3],
}

fn constants(g: &Pool2dGeom) -> [(&'static str, f64); 12] {
    [
        ("WG", WG as f64),
        ("IN_H", g.in_h as f64),
        ("IN_W", g.in_w as f64),
        ("C", g.channels as f64),
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
        "pool2d: {what} holds {} bytes, needs {}",
        buf.size(),
        elems * 4
    );
}

/// `n` invocations of `spec`, one per element of its output.
fn build(
    gpu: &Gpu,
    g: &Pool2dGeom,
    spec: &KernelSpec,
    n: usize,
    buffers: &[View<'_>],
) -> Result<Dispatch> {
    g.assert_valid();
    assert!(
        n <= u32::MAX as usize,
        "pool2d: {n} work items overflow u32"
    );
    gpu.launch(
        spec,
        &constants(g),
        &Params {
            n: n as u32,
            _pad: [0; 3],
        },
        buffers,
        grid_1d_or_none(n as u64, WG),
    )
}

/// y = the maximum of each window's in-image taps.
pub fn max_forward<'b>(
    gpu: &Gpu,
    g: &Pool2dGeom,
    x: impl Bind<'b>,
    y: impl Bind<'b>,
) -> Result<Dispatch> {
    assert_holds("x", x, g.input_len());
    assert_holds("y", y, g.output_len());
    build(gpu, g, &MAX_FORWARD, g.output_len(), &[x.view(), y.view()])
}

/// dx[i] = Σ dy over the windows whose (first) argmax is x[i], in window
/// order; dx is fully overwritten.
pub fn max_backward<'b>(
    gpu: &Gpu,
    g: &Pool2dGeom,
    x: impl Bind<'b>,
    dy: impl Bind<'b>,
    dx: impl Bind<'b>,
) -> Result<Dispatch> {
    assert_holds("x", x, g.input_len());
    assert_holds("dy", dy, g.output_len());
    assert_holds("dx", dx, g.input_len());
    let b = [x.view(), dy.view(), dx.view()];
    build(gpu, g, &MAX_BACKWARD, g.input_len(), &b)
}

/// y = the mean of each window's in-image taps.
pub fn avg_forward<'b>(
    gpu: &Gpu,
    g: &Pool2dGeom,
    x: impl Bind<'b>,
    y: impl Bind<'b>,
) -> Result<Dispatch> {
    assert_holds("x", x, g.input_len());
    assert_holds("y", y, g.output_len());
    build(gpu, g, &AVG_FORWARD, g.output_len(), &[x.view(), y.view()])
}

/// dx[i] = Σ dy/taps over the windows containing x[i]; fully overwritten.
pub fn avg_backward<'b>(
    gpu: &Gpu,
    g: &Pool2dGeom,
    dy: impl Bind<'b>,
    dx: impl Bind<'b>,
) -> Result<Dispatch> {
    assert_holds("dy", dy, g.output_len());
    assert_holds("dx", dx, g.input_len());
    build(
        gpu,
        g,
        &AVG_BACKWARD,
        g.input_len(),
        &[dy.view(), dx.view()],
    )
}

/// Plain-Rust references, by scattering over the output windows (the
/// kernels gather). Max pooling in the element type itself, summing in the
/// kernel's order (windows ascending), so GPU and CPU agree exactly; average
/// pooling accumulates in f64. `*_f64` twins serve the gradient checks.
pub mod cpu {
    use super::Pool2dGeom;

    /// Calls `f(window index, x index of each in-image tap in scan order)`.
    fn for_windows(g: &Pool2dGeom, mut f: impl FnMut(usize, &[usize])) {
        let mut taps = Vec::with_capacity(g.kh * g.kw);
        let mut o = 0;
        for b in 0..g.batch {
            for oy in 0..g.out_h() {
                for ox in 0..g.out_w() {
                    let (rows, cols) = g.window(oy, ox);
                    for c in 0..g.channels {
                        taps.clear();
                        for iy in rows.clone() {
                            for ix in cols.clone() {
                                taps.push(((b * g.in_h + iy) * g.in_w + ix) * g.channels + c);
                            }
                        }
                        f(o, &taps);
                        o += 1;
                    }
                }
            }
        }
    }

    /// The first maximum: a later tap wins only if strictly greater.
    fn argmax<T: Copy + PartialOrd>(x: &[T], taps: &[usize]) -> usize {
        taps.iter()
            .copied()
            .reduce(|best, i| if x[i] > x[best] { i } else { best })
            .expect("every window has an in-image tap")
    }

    fn max_fwd<T: Copy + PartialOrd + Default>(g: &Pool2dGeom, x: &[T]) -> Vec<T> {
        assert_eq!(x.len(), g.input_len(), "max_forward: x length");
        let mut y = vec![T::default(); g.output_len()];
        for_windows(g, |o, taps| y[o] = x[argmax(x, taps)]);
        y
    }

    fn max_bwd<T: Copy + PartialOrd + Default + std::ops::AddAssign>(
        g: &Pool2dGeom,
        x: &[T],
        dy: &[T],
    ) -> Vec<T> {
        assert_eq!(x.len(), g.input_len(), "max_backward: x length");
        assert_eq!(dy.len(), g.output_len(), "max_backward: dy length");
        let mut dx = vec![T::default(); g.input_len()];
        for_windows(g, |o, taps| dx[argmax(x, taps)] += dy[o]);
        dx
    }

    pub fn max_forward(g: &Pool2dGeom, x: &[f32]) -> Vec<f32> {
        max_fwd(g, x)
    }

    pub fn max_backward(g: &Pool2dGeom, x: &[f32], dy: &[f32]) -> Vec<f32> {
        max_bwd(g, x, dy)
    }

    pub fn max_forward_f64(g: &Pool2dGeom, x: &[f64]) -> Vec<f64> {
        max_fwd(g, x)
    }

    pub fn max_backward_f64(g: &Pool2dGeom, x: &[f64], dy: &[f64]) -> Vec<f64> {
        max_bwd(g, x, dy)
    }

    pub fn avg_forward_f64(g: &Pool2dGeom, x: &[f64]) -> Vec<f64> {
        assert_eq!(x.len(), g.input_len(), "avg_forward: x length");
        let mut y = vec![0.0; g.output_len()];
        for_windows(g, |o, taps| {
            y[o] = taps.iter().map(|&i| x[i]).sum::<f64>() / taps.len() as f64
        });
        y
    }

    pub fn avg_backward_f64(g: &Pool2dGeom, dy: &[f64]) -> Vec<f64> {
        assert_eq!(dy.len(), g.output_len(), "avg_backward: dy length");
        let mut dx = vec![0.0; g.input_len()];
        for_windows(g, |o, taps| {
            for &i in taps {
                dx[i] += dy[o] / taps.len() as f64;
            }
        });
        dx
    }

    fn widen(v: &[f32]) -> Vec<f64> {
        v.iter().map(|&a| a as f64).collect()
    }

    fn narrow(v: Vec<f64>) -> Vec<f32> {
        v.into_iter().map(|a| a as f32).collect()
    }

    pub fn avg_forward(g: &Pool2dGeom, x: &[f32]) -> Vec<f32> {
        narrow(avg_forward_f64(g, &widen(x)))
    }

    pub fn avg_backward(g: &Pool2dGeom, dy: &[f32]) -> Vec<f32> {
        narrow(avg_backward_f64(g, &widen(dy)))
    }
}
