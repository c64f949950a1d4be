//! 2-D max and average pooling over NHWC with TensorFlow semantics
//! (`shaders/pool.wgsl`). Max pooling never picks a padding tap and breaks
//! ties toward the first maximum in window scan order (ky, then kx); average
//! pooling divides by the in-image taps only. Both backward passes are
//! gathers that recompute what they need (the argmax, the divisor), so
//! nothing is stored between the passes. GlobalAveragePooling2D is average
//! pooling with the window the whole image and "valid" padding.

use super::window::{assert_holds, launch, Window2d};
use crate::gpu::{Bind, Binding, Dispatch, Gpu, KernelSpec, Result, View};
use crate::shaders::POOL;

const IN_OUT: &[Binding] = &[Binding::Uniform, Binding::Storage, Binding::StorageRw];

/// `pool.wgsl`'s `max_forward`: x → y, one invocation per element of y.
pub static MAX_FORWARD: KernelSpec = KernelSpec {
    shader: &POOL,
    entry: "max_forward",
    bindings: IN_OUT,
};
/// `pool.wgsl`'s `max_backward`: (x, dy) → dx, one invocation per element of dx.
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
/// `pool.wgsl`'s `avg_forward`: x → y, one invocation per element of y.
pub static AVG_FORWARD: KernelSpec = KernelSpec {
    shader: &POOL,
    entry: "avg_forward",
    bindings: IN_OUT,
};
/// `pool.wgsl`'s `avg_backward`: dy → dx, one invocation per element of dx.
pub static AVG_BACKWARD: KernelSpec = KernelSpec {
    shader: &POOL,
    entry: "avg_backward",
    bindings: IN_OUT,
};

/// The shape of one pooling layer applied to a batch: NHWC input
/// [batch, in_h, in_w, channels], output [batch, out_h, out_w, channels].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dGeom {
    /// Images in the batch.
    pub batch: usize,
    /// Channels, pooled independently.
    pub channels: usize,
    /// Image size, window size, strides and padding.
    pub window: Window2d,
}

impl Pool2dGeom {
    /// GlobalAveragePooling2D's geometry: one window, the whole image.
    pub fn global(batch: usize, in_h: usize, in_w: usize, channels: usize) -> Self {
        Pool2dGeom {
            batch,
            channels,
            window: Window2d::whole(in_h, in_w),
        }
    }

    /// Elements of x (NHWC).
    pub fn input_len(&self) -> usize {
        self.batch * self.window.in_pixels() * self.channels
    }

    /// Elements of y (NHWC).
    pub fn output_len(&self) -> usize {
        self.batch * self.window.out_pixels() * self.channels
    }

    /// A forward entry point: x → y, one invocation per element of y.
    fn forward<'b>(
        &self,
        gpu: &Gpu,
        spec: &KernelSpec,
        x: impl Bind<'b>,
        y: impl Bind<'b>,
    ) -> Result<Dispatch> {
        assert_holds("pool2d", "x", x, self.input_len());
        assert_holds("pool2d", "y", y, self.output_len());
        self.launch(gpu, spec, self.output_len(), &[x.view(), y.view()])
    }

    /// `n` invocations of `spec`, one per element of its output.
    fn launch(
        &self,
        gpu: &Gpu,
        spec: &KernelSpec,
        n: usize,
        buffers: &[View<'_>],
    ) -> Result<Dispatch> {
        self.window.assert_valid("pool2d", self.channels, self);
        launch(
            gpu,
            "pool2d",
            &self.window,
            ("C", self.channels),
            spec,
            n,
            buffers,
        )
    }
}

/// y = the maximum of each window's in-image taps.
pub fn max_forward<'b>(
    gpu: &Gpu,
    g: &Pool2dGeom,
    x: impl Bind<'b>,
    y: impl Bind<'b>,
) -> Result<Dispatch> {
    g.forward(gpu, &MAX_FORWARD, x, y)
}

/// `dx[i] = Σ dy` over the windows whose (first) argmax is `x[i]`, in window
/// order; dx is fully overwritten.
pub fn max_backward<'b>(
    gpu: &Gpu,
    g: &Pool2dGeom,
    x: impl Bind<'b>,
    dy: impl Bind<'b>,
    dx: impl Bind<'b>,
) -> Result<Dispatch> {
    assert_holds("pool2d", "x", x, g.input_len());
    assert_holds("pool2d", "dy", dy, g.output_len());
    assert_holds("pool2d", "dx", dx, g.input_len());
    let b = [x.view(), dy.view(), dx.view()];
    g.launch(gpu, &MAX_BACKWARD, g.input_len(), &b)
}

/// y = the mean of each window's in-image taps.
pub fn avg_forward<'b>(
    gpu: &Gpu,
    g: &Pool2dGeom,
    x: impl Bind<'b>,
    y: impl Bind<'b>,
) -> Result<Dispatch> {
    g.forward(gpu, &AVG_FORWARD, x, y)
}

/// `dx[i] = Σ dy/taps` over the windows containing `x[i]`; fully overwritten.
pub fn avg_backward<'b>(
    gpu: &Gpu,
    g: &Pool2dGeom,
    dy: impl Bind<'b>,
    dx: impl Bind<'b>,
) -> Result<Dispatch> {
    assert_holds("pool2d", "dy", dy, g.output_len());
    assert_holds("pool2d", "dx", dx, g.input_len());
    g.launch(gpu, &AVG_BACKWARD, g.input_len(), &[dy.view(), dx.view()])
}

/// Plain-Rust references, by scattering over the output windows (the
/// kernels gather). Max pooling in the element type itself, summing in the
/// kernel's order (windows ascending), so GPU and CPU agree exactly; average
/// pooling accumulates in f64. `*_f64` twins serve the gradient checks.
pub mod cpu {
    use super::Pool2dGeom;

    /// Calls `f(window index, x index of each in-image tap in scan order)`.
    fn for_windows(g: &Pool2dGeom, mut f: impl FnMut(usize, &[usize])) {
        let w = &g.window;
        let mut taps = Vec::with_capacity(w.taps());
        let mut o = 0;
        for b in 0..g.batch {
            for oy in 0..w.out_h() {
                for ox in 0..w.out_w() {
                    let (rows, cols) = w.in_image(oy, ox);
                    for c in 0..g.channels {
                        taps.clear();
                        for iy in rows.clone() {
                            for ix in cols.clone() {
                                taps.push(((b * w.in_h + iy) * w.in_w + ix) * g.channels + c);
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

    /// Max pooling forward, in f32 (exactly the kernel's result).
    pub fn max_forward(g: &Pool2dGeom, x: &[f32]) -> Vec<f32> {
        max_fwd(g, x)
    }

    /// Max pooling backward, in f32 (exactly the kernel's result).
    pub fn max_backward(g: &Pool2dGeom, x: &[f32], dy: &[f32]) -> Vec<f32> {
        max_bwd(g, x, dy)
    }

    /// Max pooling forward, in f64.
    pub fn max_forward_f64(g: &Pool2dGeom, x: &[f64]) -> Vec<f64> {
        max_fwd(g, x)
    }

    /// Max pooling backward, in f64.
    pub fn max_backward_f64(g: &Pool2dGeom, x: &[f64], dy: &[f64]) -> Vec<f64> {
        max_bwd(g, x, dy)
    }

    /// Average pooling forward, in f64.
    pub fn avg_forward_f64(g: &Pool2dGeom, x: &[f64]) -> Vec<f64> {
        assert_eq!(x.len(), g.input_len(), "avg_forward: x length");
        let mut y = vec![0.0; g.output_len()];
        for_windows(g, |o, taps| {
            y[o] = taps.iter().map(|&i| x[i]).sum::<f64>() / taps.len() as f64
        });
        y
    }

    /// Average pooling backward, in f64.
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

    /// Average pooling forward, accumulated in f64, rounded to f32.
    pub fn avg_forward(g: &Pool2dGeom, x: &[f32]) -> Vec<f32> {
        narrow(avg_forward_f64(g, &widen(x)))
    }

    /// Average pooling backward, accumulated in f64, rounded to f32.
    pub fn avg_backward(g: &Pool2dGeom, dy: &[f32]) -> Vec<f32> {
        narrow(avg_backward_f64(g, &widen(dy)))
    }
}
