use gdl_gpu::kernels::pool::{self, cpu, Pool2dGeom};
use gdl_gpu::kernels::window::Padding::{self, *};
use gdl_gpu::kernels::window::Window2d;
use gdl_gpu::util::{Rng, F32_EPS};

use crate::common::*;

#[allow(clippy::too_many_arguments)]
fn geom(
    batch: usize,
    h: usize,
    w: usize,
    c: usize,
    (kh, kw): (usize, usize),
    (sh, sw): (usize, usize),
    padding: Padding,
) -> Pool2dGeom {
    Pool2dGeom {
        batch,
        channels: c,
        window: Window2d {
            in_h: h,
            in_w: w,
            kh,
            kw,
            stride_h: sh,
            stride_w: sw,
            padding,
        },
    }
}

/// Awkward shapes, then the CNN's.
fn cases() -> Vec<Pool2dGeom> {
    let mut v = vec![
        geom(1, 1, 1, 1, (1, 1), (1, 1), Valid),
        geom(1, 1, 1, 3, (2, 2), (2, 2), Same),
        // "valid" with the window larger than the image: no output, dx zeroed.
        geom(2, 2, 3, 3, (3, 3), (1, 1), Valid),
        geom(2, 2, 3, 5, (5, 4), (1, 1), Same),
    ];
    for c in [1, 3, 5, 64] {
        for p in [Same, Valid] {
            // Prime 7×5: windows overlapping (3×3 stride 2), non-square with
            // non-square strides, stride larger than the window.
            v.push(geom(2, 7, 5, c, (3, 3), (2, 2), p));
            v.push(geom(2, 7, 5, c, (2, 3), (1, 2), p));
            v.push(geom(2, 7, 5, c, (2, 2), (3, 2), p));
            v.push(geom(3, 7, 5, c, (2, 2), (2, 2), p));
        }
    }
    v.extend([
        // The CNN (batch 32): 2×2 stride 2 after 32×32×32 and 16×16×64.
        geom(32, 32, 32, 32, (2, 2), (2, 2), Valid),
        geom(32, 16, 16, 64, (2, 2), (2, 2), Valid),
        geom(32, 32, 32, 32, (2, 2), (2, 2), Same),
        // GlobalAveragePooling2D of 8×8×64, and of a prime 7×5×3.
        Pool2dGeom::global(32, 8, 8, 64),
        Pool2dGeom::global(3, 7, 5, 3),
    ]);
    v
}

/// Distinct values (a shuffled ramp, spaced 1/len apart, random signs of
/// the offset): no two taps of any window tie, so the argmax is unambiguous.
fn distinct(rng: &mut Rng, n: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n).map(|i| (i as f32 / n as f32) * 4.0 - 2.0).collect();
    rng.shuffle(&mut v);
    v
}

#[test]
fn pool_geometry_follows_tensorflow() {
    // 7×5, 3×3 stride 2 "same": out 4×3, totals (3·2 + 3 − 7, 2·2 + 3 − 5)
    // = (2, 2) → pads (1, 1); "valid": (7 − 3)/2 + 1 = 3, (5 − 3)/2 + 1 = 2.
    let g = geom(1, 7, 5, 1, (3, 3), (2, 2), Same);
    assert_eq!(
        (
            g.window.out_h(),
            g.window.out_w(),
            g.window.pad_top(),
            g.window.pad_left()
        ),
        (4, 3, 1, 1)
    );
    let g = geom(1, 7, 5, 1, (3, 3), (2, 2), Valid);
    assert_eq!((g.window.out_h(), g.window.out_w()), (3, 2));
    let g = Pool2dGeom::global(2, 8, 8, 64);
    assert_eq!(
        (g.window.out_h(), g.window.out_w(), g.output_len()),
        (1, 1, 128)
    );
    // Same padding's divisor: the corner window of 7×5 3×3/2 has 2×2 taps.
    let g = geom(1, 7, 5, 1, (3, 3), (2, 2), Same);
    assert_eq!(g.window.in_image(0, 0), (0..2, 0..2));
    assert_eq!(g.window.in_image(3, 2), (5..7, 3..5));
}

// Selection and a sum of dy in the same order on both sides: exact.
#[test]
fn max_pool_matches_reference_exactly() {
    let gpu = gpu();
    let mut rng = Rng::new(41);
    for g in cases() {
        let x = distinct(&mut rng, g.input_len());
        let dy = rng.vec(g.output_len(), -1.0, 1.0);
        let (xb, dyb) = (upload(&x), upload(&dy));
        let yb = upload(&vec![f32::NAN; g.output_len().max(1)]);
        let dxb = upload(&vec![f32::NAN; g.input_len()]);
        let f = pool::max_forward(gpu, &g, &xb, &yb).unwrap();
        let b = pool::max_backward(gpu, &g, &xb, &dyb, &dxb).unwrap();
        gpu.run("max pool", &[&f, &b]).unwrap();
        let case = format!("{g:?}");
        let (y, dx) = (read(&yb, g.output_len()), read(&dxb, g.input_len()));
        assert_close(
            &format!("forward {case}"),
            &y,
            &cpu::max_forward(&g, &x),
            0.0,
            0.0,
        );
        assert_close(
            &format!("backward {case}"),
            &dx,
            &cpu::max_backward(&g, &x, &dy),
            0.0,
            0.0,
        );
    }
}

#[test]
fn max_pool_ties_go_to_the_first_maximum() {
    let gpu = gpu();
    // All-equal input: every window's argmax is its first in-image tap (the
    // top-left one), so with 3×3 stride 2 "same" on 5×5 the taps (0, 0),
    // (1, 1), (1, 3), (3, 1), (3, 3) collect one window each, by hand: the
    // windows start at rows/columns −1, 1, 3, clipped to 0, 1, 3.
    let g = geom(1, 5, 5, 2, (3, 3), (2, 2), Same);
    let x = vec![1.5f32; g.input_len()];
    let dy: Vec<f32> = (0..g.output_len()).map(|i| (i + 1) as f32).collect();
    let (xb, dyb, dxb) = (upload(&x), upload(&dy), zeros(g.input_len()));
    let b = pool::max_backward(gpu, &g, &xb, &dyb, &dxb).unwrap();
    gpu.run("max pool ties", &[&b]).unwrap();
    let dx = read(&dxb, g.input_len());
    let mut want = vec![0.0f32; g.input_len()];
    let starts = [0usize, 1, 3];
    for (oy, &iy) in starts.iter().enumerate() {
        for (ox, &ix) in starts.iter().enumerate() {
            for c in 0..2 {
                want[(iy * 5 + ix) * 2 + c] += dy[(oy * 3 + ox) * 2 + c];
            }
        }
    }
    assert_eq!(dx, want);
    assert_eq!(cpu::max_backward(&g, &x, &dy), want);
    // A tie between two later taps above the rest: the first of them wins.
    let g = geom(1, 2, 2, 1, (2, 2), (2, 2), Valid);
    let x = [0.0f32, 3.0, 3.0, 1.0];
    let (xb, dyb, dxb) = (upload(&x), upload(&[2.0]), zeros(4));
    let b = pool::max_backward(gpu, &g, &xb, &dyb, &dxb).unwrap();
    gpu.run("max pool tie", &[&b]).unwrap();
    assert_eq!(read(&dxb, 4), [0.0, 2.0, 0.0, 0.0]);
}

/// Average pooling: the GPU sums ≤ n = kh·kw taps in f32 ((n − 1)·u of the
/// sum of |taps|) and divides (WGSL allows 2.5 ulp = 5u); the reference sums
/// in f64 and rounds once (u). Backward sums ≤ W = ⌈kh/sh⌉·⌈kw/sw⌉ quotients
/// dy/taps, each off by 5u: (W − 1 + 5)·u of Σ|dy|/taps, plus u.
#[test]
fn avg_pool_matches_reference() {
    let gpu = gpu();
    let mut rng = Rng::new(42);
    for g in cases() {
        let x = rng.vec(g.input_len(), -1.0, 1.0);
        let dy = rng.vec(g.output_len(), -1.0, 1.0);
        let (xb, dyb) = (upload(&x), upload(&dy));
        let yb = upload(&vec![f32::NAN; g.output_len().max(1)]);
        let dxb = upload(&vec![f32::NAN; g.input_len()]);
        let f = pool::avg_forward(gpu, &g, &xb, &yb).unwrap();
        let b = pool::avg_backward(gpu, &g, &dyb, &dxb).unwrap();
        gpu.run("avg pool", &[&f, &b]).unwrap();
        let case = format!("{g:?}");
        let abs = |v: &[f32]| -> Vec<f32> { v.iter().map(|a| a.abs()).collect() };
        let n = (g.window.kh * g.window.kw) as f64;
        let windows = (g.window.kh.div_ceil(g.window.stride_h)
            * g.window.kw.div_ceil(g.window.stride_w)) as f64;
        let (want, mag) = (cpu::avg_forward(&g, &x), cpu::avg_forward(&g, &abs(&x)));
        let y = read(&yb, g.output_len());
        for i in 0..y.len() {
            // The sum's error bound relative to Σ|x|, carried through ÷taps.
            let bound = (n - 1.0 + 6.0) * F32_EPS * mag[i] as f64 * 1.0001;
            let err = (y[i] as f64 - want[i] as f64).abs();
            assert!(
                err <= bound,
                "forward {case} [{i}]: {} vs {}",
                y[i],
                want[i]
            );
        }
        let (want, mag) = (cpu::avg_backward(&g, &dy), cpu::avg_backward(&g, &abs(&dy)));
        let dx = read(&dxb, g.input_len());
        for i in 0..dx.len() {
            let bound = (windows + 5.0) * F32_EPS * mag[i] as f64 * 1.0001;
            let err = (dx[i] as f64 - want[i] as f64).abs();
            assert!(
                err <= bound,
                "backward {case} [{i}]: {} vs {}",
                dx[i],
                want[i]
            );
        }
    }
}
