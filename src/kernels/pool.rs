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

    /// Calls `f(window index, x index of each in-image tap in scan order)`
    /// for one image, both indices counted from the image's start.
    fn for_windows(g: &Pool2dGeom, mut f: impl FnMut(usize, &[usize])) {
        let w = &g.window;
        let mut taps = Vec::with_capacity(w.taps());
        let mut o = 0;
        for oy in 0..w.out_h() {
            for ox in 0..w.out_w() {
                let (rows, cols) = w.in_image(oy, ox);
                for c in 0..g.channels {
                    taps.clear();
                    for iy in rows.clone() {
                        for ix in cols.clone() {
                            taps.push((iy * w.in_w + ix) * g.channels + c);
                        }
                    }
                    f(o, &taps);
                    o += 1;
                }
            }
        }
    }

    /// Elements of one image's x and y.
    fn image_lens(g: &Pool2dGeom) -> (usize, usize) {
        let w = &g.window;
        (w.in_pixels() * g.channels, w.out_pixels() * g.channels)
    }

    /// Calls `f(x, y)` with each image's input and output (in parallel).
    fn per_image_fwd<T: Sync, U: Send>(
        g: &Pool2dGeom,
        x: &[T],
        y: &mut [U],
        f: impl Fn(&[T], &mut [U]) + Sync,
    ) {
        let (xi, yi) = image_lens(g);
        crate::par::chunks_mut(y, yi.max(1), |b, y| f(&x[b * xi..(b + 1) * xi], y));
    }

    /// Calls `f(x, dy, dx)` with each image's slices (in parallel).
    fn per_image_bwd<T: Sync, U: Send>(
        g: &Pool2dGeom,
        x: &[T],
        dy: &[T],
        dx: &mut [U],
        f: impl Fn(&[T], &[T], &mut [U]) + Sync,
    ) {
        let (xi, yi) = image_lens(g);
        crate::par::chunks_mut(dx, xi.max(1), |b, dx| {
            let xb = if x.is_empty() {
                x
            } else {
                &x[b * xi..(b + 1) * xi]
            };
            f(xb, &dy[b * yi..(b + 1) * yi], dx)
        });
    }

    /// The first maximum: a later tap wins only if strictly greater.
    fn argmax<T: Copy + PartialOrd>(x: &[T], taps: &[usize]) -> usize {
        taps.iter()
            .copied()
            .reduce(|best, i| if x[i] > x[best] { i } else { best })
            .expect("every window has an in-image tap")
    }

    fn max_fwd<T: Copy + PartialOrd + Send + Sync>(g: &Pool2dGeom, x: &[T], y: &mut [T]) {
        assert_eq!(x.len(), g.input_len(), "max_forward: x length");
        assert_eq!(y.len(), g.output_len(), "max_forward: y length");
        per_image_fwd(g, x, y, |x, y| {
            for_windows(g, |o, taps| y[o] = x[argmax(x, taps)])
        });
    }

    fn max_bwd<T: Copy + PartialOrd + Default + std::ops::AddAssign + Send + Sync>(
        g: &Pool2dGeom,
        x: &[T],
        dy: &[T],
        dx: &mut [T],
    ) {
        assert_eq!(x.len(), g.input_len(), "max_backward: x length");
        assert_eq!(dy.len(), g.output_len(), "max_backward: dy length");
        assert_eq!(dx.len(), g.input_len(), "max_backward: dx length");
        per_image_bwd(g, x, dy, dx, |x, dy, dx| {
            dx.fill(T::default());
            for_windows(g, |o, taps| dx[argmax(x, taps)] += dy[o])
        });
    }

    /// Max pooling forward, in f32 (exactly the kernel's result).
    pub fn max_forward(g: &Pool2dGeom, x: &[f32]) -> Vec<f32> {
        let mut y = vec![0.0; g.output_len()];
        max_fwd(g, x, &mut y);
        y
    }

    /// [`max_forward`] into `y`, on all threads.
    pub fn max_forward_into(g: &Pool2dGeom, x: &[f32], y: &mut [f32]) {
        max_fwd(g, x, y)
    }

    /// Max pooling backward, in f32 (exactly the kernel's result).
    pub fn max_backward(g: &Pool2dGeom, x: &[f32], dy: &[f32]) -> Vec<f32> {
        let mut dx = vec![0.0; g.input_len()];
        max_bwd(g, x, dy, &mut dx);
        dx
    }

    /// [`max_backward`] into `dx`, on all threads.
    pub fn max_backward_into(g: &Pool2dGeom, x: &[f32], dy: &[f32], dx: &mut [f32]) {
        max_bwd(g, x, dy, dx)
    }

    /// Max pooling forward, in f64.
    pub fn max_forward_f64(g: &Pool2dGeom, x: &[f64]) -> Vec<f64> {
        let mut y = vec![0.0; g.output_len()];
        max_fwd(g, x, &mut y);
        y
    }

    /// Max pooling backward, in f64.
    pub fn max_backward_f64(g: &Pool2dGeom, x: &[f64], dy: &[f64]) -> Vec<f64> {
        let mut dx = vec![0.0; g.input_len()];
        max_bwd(g, x, dy, &mut dx);
        dx
    }

    /// Average pooling forward, summed in f64, into y (rounded by `cast`).
    fn avg_fwd<T: Copy + Into<f64> + Sync, U: Send>(
        g: &Pool2dGeom,
        x: &[T],
        y: &mut [U],
        cast: impl Fn(f64) -> U + Sync,
    ) {
        assert_eq!(x.len(), g.input_len(), "avg_forward: x length");
        assert_eq!(y.len(), g.output_len(), "avg_forward: y length");
        per_image_fwd(g, x, y, |x, y| {
            for_windows(g, |o, taps| {
                let s = taps.iter().map(|&i| x[i].into()).sum::<f64>();
                y[o] = cast(s / taps.len() as f64)
            })
        });
    }

    /// Average pooling backward, summed in f64, into dx (rounded by `cast`).
    fn avg_bwd<T: Copy + Into<f64> + Sync, U: Send>(
        g: &Pool2dGeom,
        dy: &[T],
        dx: &mut [U],
        cast: impl Fn(f64) -> U + Sync,
    ) {
        assert_eq!(dy.len(), g.output_len(), "avg_backward: dy length");
        assert_eq!(dx.len(), g.input_len(), "avg_backward: dx length");
        let img = image_lens(g).0;
        per_image_bwd(g, &[], dy, dx, |_, dy, dx| {
            let mut acc = vec![0.0f64; img];
            for_windows(g, |o, taps| {
                for &i in taps {
                    acc[i] += dy[o].into() / taps.len() as f64;
                }
            });
            for (d, a) in dx.iter_mut().zip(acc) {
                *d = cast(a);
            }
        });
    }

    /// Average pooling forward, in f64.
    pub fn avg_forward_f64(g: &Pool2dGeom, x: &[f64]) -> Vec<f64> {
        let mut y = vec![0.0; g.output_len()];
        avg_fwd(g, x, &mut y, |v| v);
        y
    }

    /// Average pooling backward, in f64.
    pub fn avg_backward_f64(g: &Pool2dGeom, dy: &[f64]) -> Vec<f64> {
        let mut dx = vec![0.0; g.input_len()];
        avg_bwd(g, dy, &mut dx, |v| v);
        dx
    }

    /// Average pooling forward, accumulated in f64, rounded to f32.
    pub fn avg_forward(g: &Pool2dGeom, x: &[f32]) -> Vec<f32> {
        let mut y = vec![0.0; g.output_len()];
        avg_forward_into(g, x, &mut y);
        y
    }

    /// [`avg_forward`] into `y`, on all threads.
    pub fn avg_forward_into(g: &Pool2dGeom, x: &[f32], y: &mut [f32]) {
        avg_fwd(g, x, y, |v| v as f32)
    }

    /// Average pooling backward, accumulated in f64, rounded to f32.
    pub fn avg_backward(g: &Pool2dGeom, dy: &[f32]) -> Vec<f32> {
        let mut dx = vec![0.0; g.input_len()];
        avg_backward_into(g, dy, &mut dx);
        dx
    }

    /// [`avg_backward`] into `dx`, on all threads.
    pub fn avg_backward_into(g: &Pool2dGeom, dy: &[f32], dx: &mut [f32]) {
        avg_bwd(g, dy, dx, |v| v as f32)
    }
}
