use gdl_gpu::gpu::View;
use gdl_gpu::kernels::conv::{self, cpu, Conv2dGeom, ConvMethod, ConvPass, Padding};
use gdl_gpu::kernels::gemm::{self, Epilogue};
use gdl_gpu::kernels::window::Window2d;
use gdl_gpu::util::{Rng, F32_EPS};

use crate::common::*;

#[allow(clippy::too_many_arguments)]
fn geom(
    batch: usize,
    h: usize,
    w: usize,
    c: usize,
    out_c: usize,
    k: usize,
    stride: usize,
    padding: Padding,
) -> Conv2dGeom {
    Conv2dGeom {
        batch,
        in_c: c,
        out_c,
        window: Window2d {
            in_h: h,
            in_w: w,
            kh: k,
            kw: k,
            stride_h: stride,
            stride_w: stride,
            padding,
        },
    }
}

/// Awkward shapes and every conv of the chapter's models.
fn cases() -> Vec<Conv2dGeom> {
    use Padding::*;
    let mut v = vec![
        geom(1, 1, 1, 1, 1, 1, 1, Same),
        geom(1, 1, 1, 1, 1, 1, 1, Valid),
        geom(2, 1, 1, 4, 3, 1, 1, Same),
        geom(3, 5, 7, 2, 2, 1, 1, Valid),
        // Kernel larger than the image: "same" pads on both sides.
        geom(2, 2, 3, 3, 2, 5, 1, Same),
        geom(2, 3, 2, 4, 2, 4, 2, Same),
        // "valid" with the kernel larger than the image: no output at all;
        // col2im must still zero dx.
        geom(2, 2, 2, 3, 1, 3, 1, Valid),
        geom(2, 2, 2, 4, 1, 3, 1, Valid),
        // Non-square kernel, stride larger than the kernel.
        Conv2dGeom {
            batch: 2,
            in_c: 5,
            out_c: 3,
            window: Window2d {
                in_h: 9,
                in_w: 6,
                kh: 2,
                kw: 3,
                stride_h: 3,
                stride_w: 3,
                padding: Same,
            },
        },
        // Non-square strides, with and without the vec4 path, both paddings.
        {
            let mut g = geom(2, 7, 9, 3, 2, 3, 1, Same);
            (g.window.stride_h, g.window.stride_w) = (1, 2);
            g
        },
        {
            let mut g = geom(2, 9, 7, 4, 2, 3, 1, Same);
            (g.window.stride_h, g.window.stride_w) = (2, 1);
            g
        },
        {
            let mut g = geom(3, 11, 8, 8, 3, 3, 1, Valid);
            (g.window.stride_h, g.window.stride_w, g.window.kw) = (3, 2, 2);
            g
        },
        {
            let mut g = geom(2, 5, 13, 5, 2, 4, 1, Valid);
            (g.window.stride_h, g.window.stride_w) = (2, 3);
            g
        },
        // The CNN (batch 32): 32×32×3 k3 s1; 32×32×32 k3 s2; 16×16×32 k3 s1;
        // 16×16×64 k3 s2 (all "same").
        geom(32, 32, 32, 3, 32, 3, 1, Same),
        geom(32, 32, 32, 32, 32, 3, 2, Same),
        geom(32, 16, 16, 32, 64, 3, 1, Same),
        geom(32, 16, 16, 64, 64, 3, 2, Same),
        // The chapter's sketch: 10 filters 4×4 s2, then 20 filters 3×3 s2.
        geom(32, 32, 32, 3, 10, 4, 2, Same),
        geom(32, 16, 16, 10, 20, 3, 2, Same),
    ];
    // Prime image 7×5, 3 channels (and 4, for the vec4 path), k 3.
    for c in [3, 4] {
        for s in [1, 2] {
            for p in [Same, Valid] {
                v.push(Conv2dGeom {
                    batch: 2,
                    in_c: c,
                    out_c: 2,
                    window: Window2d {
                        in_h: 7,
                        in_w: 5,
                        kh: 3,
                        kw: 3,
                        stride_h: s,
                        stride_w: s,
                        padding: p,
                    },
                });
            }
        }
    }
    v
}

#[test]
fn geometry_follows_tensorflow() {
    // CIFAR CNN: 32×32, 3×3 stride 2 "same" → 16, pad_total 1, top 0 (bottom 1).
    let g = geom(1, 32, 32, 32, 32, 3, 2, Padding::Same);
    assert_eq!(
        (
            g.window.out_h(),
            g.window.out_w(),
            g.window.pad_top(),
            g.window.pad_left()
        ),
        (16, 16, 0, 0)
    );
    // Stride 1 "same" 3×3: pad 1 each side.
    let g = geom(1, 32, 32, 3, 32, 3, 1, Padding::Same);
    assert_eq!((g.window.out_h(), g.window.pad_top()), (32, 1));
    // 4×4 stride 2 "same" on 32: out 16, pad_total 2, top 1.
    let g = geom(1, 32, 32, 3, 10, 4, 2, Padding::Same);
    assert_eq!((g.window.out_h(), g.window.pad_top()), (16, 1));
    // 5×5 on 2×3 "same": out 2×3, pad_total 4 / 4 → top 2, left 2.
    let g = geom(1, 2, 3, 1, 1, 5, 1, Padding::Same);
    assert_eq!(
        (
            g.window.out_h(),
            g.window.out_w(),
            g.window.pad_top(),
            g.window.pad_left()
        ),
        (2, 3, 2, 2)
    );
    // "valid": floor((7 − 3)/2) + 1 = 3; kernel larger than the image → 0.
    let g = geom(1, 7, 5, 1, 1, 3, 2, Padding::Valid);
    assert_eq!(
        (g.window.out_h(), g.window.out_w(), g.window.pad_top()),
        (3, 2, 0)
    );
    let g = geom(1, 2, 2, 1, 1, 3, 1, Padding::Valid);
    assert_eq!((g.window.out_h(), g.col_rows()), (0, 0));
    assert_eq!(g.col_cols(), 9);
    // Strides per axis: 9×7 "same" with strides (2, 3) → 5×3; totals
    // (4·2 + 3 − 9, 2·3 + 3 − 7) = (2, 2) → pads (1, 1). "valid" (3, 1) on
    // 10×4 with 3×3 → (3, 2).
    let g = {
        let mut g = geom(1, 9, 7, 1, 1, 3, 1, Padding::Same);
        (g.window.stride_h, g.window.stride_w) = (2, 3);
        g
    };
    assert_eq!(
        (
            g.window.out_h(),
            g.window.out_w(),
            g.window.pad_top(),
            g.window.pad_left()
        ),
        (5, 3, 1, 1)
    );
    let g = {
        let mut g = geom(1, 10, 4, 1, 1, 3, 1, Padding::Valid);
        (g.window.stride_h, g.window.stride_w) = (3, 1);
        g
    };
    assert_eq!((g.window.out_h(), g.window.out_w()), (3, 2));
}

#[test]
fn window_out_follows_tensorflow() {
    use gdl_gpu::kernels::window::{window_out, Padding::*};
    // (in, k, stride) → same: (ceil(in/s), max((out−1)s + k − in, 0)/2).
    assert_eq!(window_out(32, 3, 2, Same), Some((16, 0)));
    assert_eq!(window_out(32, 3, 1, Same), Some((32, 1)));
    assert_eq!(window_out(32, 4, 2, Same), Some((16, 1)));
    assert_eq!(window_out(2, 5, 1, Same), Some((2, 2)));
    assert_eq!(window_out(7, 2, 3, Same), Some((3, 0)));
    assert_eq!(window_out(1, 1, 1, Same), Some((1, 0)));
    assert_eq!(window_out(7, 3, 2, Valid), Some((3, 0)));
    assert_eq!(window_out(8, 8, 1, Valid), Some((1, 0)));
    assert_eq!(window_out(2, 3, 1, Valid), None);
}

// im2col only copies: exact.
#[test]
fn im2col_matches_reference() {
    let gpu = gpu();
    let mut rng = Rng::new(11);
    for g in cases() {
        let x = rng.vec(g.input_len(), -1.0, 1.0);
        let n = g.col_rows() * g.col_cols();
        let xb = upload(&x);
        let cb = upload(&vec![f32::NAN; n.max(1)]);
        let d = conv::im2col(gpu, &g, &xb, &cb).unwrap();
        gpu.run("im2col", &[&d]).unwrap();
        assert_close(
            &format!("im2col {g:?}"),
            &read(&cb, n),
            &cpu::im2col(&g, &x),
            0.0,
            0.0,
        );
    }
}

/// Per-element bound for a sum of at most `terms` values against a reference
/// rounded once from an exact (f64) sum: recursive f32 summation errs by at
/// most (terms − 1)·u·Σ|terms|, plus one rounding of the reference itself.
#[track_caller]
fn assert_sum_close(case: &str, got: &[f32], want: &[f32], abs_sum: &[f32], terms: usize) {
    assert_eq!(got.len(), want.len(), "{case}: length");
    for i in 0..got.len() {
        let bound = terms as f64 * F32_EPS * abs_sum[i] as f64 * 1.0001;
        let err = (got[i] as f64 - want[i] as f64).abs();
        assert!(
            err <= bound,
            "{case}: element {i}: got {}, want {}, |diff| {err:.3e} > {bound:.3e}",
            got[i],
            want[i]
        );
    }
}

#[test]
fn col2im_matches_reference() {
    let gpu = gpu();
    let mut rng = Rng::new(12);
    for g in cases() {
        let n = g.col_rows() * g.col_cols();
        let dcols = rng.vec(n, -1.0, 1.0);
        let abs: Vec<f32> = dcols.iter().map(|v| v.abs()).collect();
        let cb = upload(&dcols);
        let xb = upload(&vec![f32::NAN; g.input_len()]);
        let d = conv::col2im(gpu, &g, &cb, &xb).unwrap();
        gpu.run("col2im", &[&d]).unwrap();
        assert_sum_close(
            &format!("col2im {g:?}"),
            &read(&xb, g.input_len()),
            &cpu::col2im(&g, &dcols),
            &cpu::col2im(&g, &abs),
            g.window.kh * g.window.kw,
        );
    }
}

/// Naive [m, k]·[k, n] in f64.
fn matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut c = vec![0.0f64; m * n];
    for i in 0..m {
        for p in 0..k {
            let av = a[i * k + p] as f64;
            for j in 0..n {
                c[i * n + j] += av * b[p * n + j] as f64;
            }
        }
    }
    c
}

/// Both sides of the CPU consistency checks sum the same K products in f64
/// in different orders (each errs by ≤ K·2⁻⁵³·Σ|terms| ≤ K²·2⁻⁵³ with all
/// |values| ≤ 1) and round once to f32: allow both f64 errors absolutely and
/// one f32 rounding of each side relatively (2u).
fn f64_sum_atol(k: usize) -> f64 {
    2.0 * (k * k) as f64 * 2f64.powi(-53)
}

#[test]
fn cpu_forward_equals_im2col_matmul() {
    let mut rng = Rng::new(13);
    for g in cases().into_iter().filter(|g| g.input_len() < 200_000) {
        let x = rng.vec(g.input_len(), -1.0, 1.0);
        let w = rng.vec(g.weight_len(), -1.0, 1.0);
        let bias = rng.vec(g.out_c, -1.0, 1.0);
        let cols = cpu::im2col(&g, &x);
        let prod = matmul(&cols, &w, g.col_rows(), g.col_cols(), g.out_c);
        let want: Vec<f32> = prod
            .iter()
            .enumerate()
            .map(|(i, v)| (v + bias[i % g.out_c] as f64) as f32)
            .collect();
        assert_close(
            &format!("forward {g:?}"),
            &cpu::conv2d_forward(&g, &x, &w, &bias),
            &want,
            1e-12,
            2.0 * F32_EPS,
        );
    }
}

#[test]
fn cpu_backward_dx_equals_col2im_of_dy_wt() {
    let mut rng = Rng::new(14);
    for g in cases().into_iter().filter(|g| g.input_len() < 200_000) {
        let x = rng.vec(g.input_len(), -1.0, 1.0);
        let w = rng.vec(g.weight_len(), -1.0, 1.0);
        let dy = rng.vec(g.output_len(), -1.0, 1.0);
        let (k, oc) = (g.col_cols(), g.out_c);
        // W as [k, oc]; Wᵀ as [oc, k].
        let mut wt = vec![0.0f32; k * oc];
        for p in 0..k {
            for o in 0..oc {
                wt[o * k + p] = w[p * oc + o];
            }
        }
        // dcols rounded to f32 (u relative each), then summed by col2im in
        // f64 over ≤ kh·kw terms: error ≤ u·Σ|dcols| per element, plus the
        // final roundings.
        let dcols: Vec<f32> = matmul(&dy, &wt, g.col_rows(), oc, k)
            .into_iter()
            .map(|v| v as f32)
            .collect();
        let abs: Vec<f32> = dcols.iter().map(|v| v.abs()).collect();
        let abs_sum = cpu::col2im(&g, &abs);
        let want = cpu::col2im(&g, &dcols);
        let (dx, dw, db) = cpu::conv2d_backward(&g, &x, &w, &dy);
        assert_sum_close(&format!("dx {g:?}"), &dx, &want, &abs_sum, 3);
        // dW = colsᵀ·dY and db = Σ rows of dY, the same way.
        let cols = cpu::im2col(&g, &x);
        let mut cols_t = vec![0.0f32; cols.len()];
        for r in 0..g.col_rows() {
            for p in 0..k {
                cols_t[p * g.col_rows() + r] = cols[r * k + p];
            }
        }
        let want_dw: Vec<f32> = matmul(&cols_t, &dy, k, g.col_rows(), oc)
            .into_iter()
            .map(|v| v as f32)
            .collect();
        let atol = f64_sum_atol(g.col_rows());
        assert_close(&format!("dw {g:?}"), &dw, &want_dw, atol, 2.0 * F32_EPS);
        let ones = vec![1.0f32; g.col_rows()];
        let want_db: Vec<f32> = matmul(&ones, &dy, 1, g.col_rows(), oc)
            .into_iter()
            .map(|v| v as f32)
            .collect();
        assert_close(&format!("db {g:?}"), &db, &want_db, atol, 2.0 * F32_EPS);
    }
}

/// Every case, and each again with its channels rounded up to a multiple
/// of 4 (both ways), so that the implicit kernels meet every window.
fn widened_cases() -> Vec<Conv2dGeom> {
    let mut v = cases();
    for g in cases() {
        v.push(Conv2dGeom {
            in_c: g.in_c.next_multiple_of(4),
            out_c: g.out_c.next_multiple_of(4),
            ..g
        });
    }
    v
}

/// The cases the implicit-GEMM kernels take (x gathered in vec4s where its
/// channels are a multiple of 4, element by element elsewhere), or none,
/// saying why, where the adapter lacks 8-lane subgroups.
fn implicit_cases(test: &str) -> Vec<Conv2dGeom> {
    let gpu = gpu();
    let v: Vec<Conv2dGeom> = widened_cases()
        .into_iter()
        .filter(|g| ConvMethod::Implicit.available(gpu, g, ConvPass::Forward))
        .collect();
    if v.is_empty() {
        eprintln!(
            "{test}: skipped: {} does not run the subgroup GEMM (needs 8-lane subgroups)",
            gpu.name()
        );
    }
    v
}

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

// Each output sums kh·kw·in_c products in f32 (plus the bias, and the
// epilogue is exact), against the f64 reference rounded once.
#[test]
fn implicit_conv_forward_matches_reference() {
    let gpu = gpu();
    let mut rng = Rng::new(21);
    for g in implicit_cases("implicit_conv_forward_matches_reference") {
        let x = rng.vec(g.input_len(), -1.0, 1.0);
        let w = rng.vec(g.weight_len(), -1.0, 1.0);
        let bias = rng.vec(g.out_c, -1.0, 1.0);
        let (xb, wb, bb) = (upload(&x), upload(&w), upload(&bias));
        let yb = upload(&vec![f32::NAN; g.output_len()]);
        let d =
            gemm::conv_forward_implicit(gpu, &g, &xb, &wb, Some((&bb).into()), &yb, Epilogue::None)
                .unwrap();
        gpu.run("implicit conv forward", &d.iter().collect::<Vec<_>>())
            .unwrap();
        assert_sum_close(
            &format!("implicit forward {g:?}"),
            &read(&yb, g.output_len()),
            &cpu::conv2d_forward(&g, &x, &w, &bias),
            &cpu::conv2d_forward(&g, &abs(&x), &abs(&w), &abs(&bias)),
            g.col_cols() + 1,
        );
    }
}

// Each dW entry sums one product per output pixel, each db entry one dy
// per output pixel; db rides in the same dispatch where it follows dW in one
// buffer, and in a pass of its own where it does not.
#[test]
fn implicit_conv_weight_grad_matches_reference() {
    let gpu = gpu();
    let mut rng = Rng::new(22);
    for g in implicit_cases("implicit_conv_weight_grad_matches_reference") {
        let x = rng.vec(g.input_len(), -1.0, 1.0);
        let dy = rng.vec(g.output_len(), -1.0, 1.0);
        let w = vec![0.0; g.weight_len()];
        let (xb, dyb) = (upload(&x), upload(&dy));
        let (_, want, want_db) = cpu::conv2d_backward(&g, &x, &w, &dy);
        let (_, abs_sum, abs_db) = cpu::conv2d_backward(&g, &abs(&x), &w, &abs(&dy));
        let (wl, oc) = (g.weight_len(), g.out_c);
        let db_at = (wl * 4).next_multiple_of(256);
        let joint = upload(&vec![f32::NAN; db_at / 4 + oc.next_multiple_of(4)]);
        let separate = (upload(&vec![f32::NAN; wl]), upload(&vec![f32::NAN; oc]));
        let size = |n: usize| (n * 4).next_multiple_of(16) as u64;
        for (dw, db, at, how) in [
            (
                View::new(&joint, 0, size(wl)),
                Some(View::new(&joint, db_at as u64, size(oc))),
                db_at / 4,
                "db after dw",
            ),
            (
                (&separate.0).into(),
                Some((&separate.1).into()),
                0,
                "db apart",
            ),
            ((&separate.0).into(), None, 0, "no db"),
        ] {
            let d = gemm::conv_weight_grad_implicit(gpu, &g, &xb, &dyb, dw, db).unwrap();
            gpu.run("implicit conv weight grad", &d.iter().collect::<Vec<_>>())
                .unwrap();
            let case = format!("implicit weight grad {g:?} ({how})");
            let got = gpu.read_f32(dw.buffer, wl).unwrap();
            assert_sum_close(&case, &got, &want, &abs_sum, g.col_rows());
            if let Some(db) = db {
                let got = gpu.read_f32(db.buffer, at + oc).unwrap();
                assert_sum_close(
                    &format!("{case}: db"),
                    &got[at..],
                    &want_db,
                    &abs_db,
                    g.col_rows(),
                );
            }
        }
    }
}

// The phases split the input pixels, each pixel exactly once, and give each
// pixel exactly the taps whose offset from it is a multiple of the strides:
// every tap that can land on an output pixel (the kernel test checks the
// sums), and none that can only land between them.
#[test]
fn stride_phases_split_pixels_and_keep_every_tap_that_lands() {
    for g in cases() {
        let w = g.window;
        let mut seen = vec![0; w.in_pixels()];
        for ph in g.input_grad_phases() {
            let taps: Vec<(usize, usize)> = (0..ph.taps_h)
                .flat_map(|ty| (0..ph.taps_w).map(move |tx| (ty, tx)))
                .map(|(ty, tx)| (ph.ky0 + w.stride_h * ty, ph.kx0 + w.stride_w * tx))
                .collect();
            assert!(
                taps.iter().all(|&(ky, kx)| ky < w.kh && kx < w.kw),
                "{g:?}: {ph:?} past the kernel"
            );
            for yy in 0..ph.rows {
                for xx in 0..ph.cols {
                    let (iy, ix) = (ph.py + w.stride_h * yy, ph.px + w.stride_w * xx);
                    assert!(iy < w.in_h && ix < w.in_w, "{g:?}: {ph:?} past the image");
                    seen[iy * w.in_w + ix] += 1;
                    for ky in 0..w.kh {
                        for kx in 0..w.kw {
                            let aligned = (iy + w.pad_top()).abs_diff(ky) % w.stride_h == 0
                                && (ix + w.pad_left()).abs_diff(kx) % w.stride_w == 0;
                            let kept = taps.contains(&(ky, kx));
                            assert_eq!(
                                kept, aligned,
                                "{g:?}: {ph:?}, tap ({ky}, {kx}) at ({iy}, {ix})"
                            );
                        }
                    }
                }
            }
        }
        assert!(
            seen.iter().all(|&n| n == 1),
            "{g:?}: pixels per phase {seen:?}"
        );
    }
}

// Each dx entry sums one product per (tap, output channel) whose window
// covers it: at most kh·kw·out_c terms.
#[test]
fn implicit_conv_input_grad_matches_reference() {
    let gpu = gpu();
    let mut rng = Rng::new(23);
    let mut ran = 0;
    for g in widened_cases().into_iter().filter(|g| {
        // Every stride: one GEMM per stride phase.
        ConvMethod::Implicit.available(gpu, g, ConvPass::InputGrad)
    }) {
        let w = rng.vec(g.weight_len(), -1.0, 1.0);
        let dy = rng.vec(g.output_len(), -1.0, 1.0);
        let x = vec![0.0; g.input_len()];
        let (wb, dyb) = (upload(&w), upload(&dy));
        let dxb = upload(&vec![f32::NAN; g.input_len()]);
        let d = gemm::conv_input_grad_implicit(gpu, &g, &dyb, &wb, &dxb).unwrap();
        gpu.run("implicit conv input grad", &d.iter().collect::<Vec<_>>())
            .unwrap();
        let (want, _, _) = cpu::conv2d_backward(&g, &x, &w, &dy);
        let (abs_sum, _, _) = cpu::conv2d_backward(&g, &x, &abs(&w), &abs(&dy));
        assert_sum_close(
            &format!("implicit input grad {g:?}"),
            &read(&dxb, g.input_len()),
            &want,
            &abs_sum,
            g.window.taps() * g.out_c,
        );
        ran += 1;
    }
    if ran == 0 {
        eprintln!(
            "implicit_conv_input_grad_matches_reference: skipped: {} does not run the subgroup GEMM",
            gpu.name()
        );
    }
}

/// A weight gradient whose K (batch·out_h·out_w) is past what the implicit
/// kernel may loop over in one invocation on a software adapter
/// (`gemm::max_k_per_dispatch`) goes by im2col there, whose GEMM runs in K
/// slices; the forward pass stays implicit. Grid data (multiples of 1/4,
/// every partial sum a multiple of 1/16 below 2²⁰) makes any summation
/// order exact, so dW and db must equal the f64 reference.
#[test]
fn weight_grad_past_the_software_loop_limit() {
    let gpu = gpu();
    let Some(limit) = gemm::max_k_per_dispatch(gpu, gemm::Variant::Subgroup) else {
        eprintln!(
            "weight_grad_past_the_software_loop_limit: skipped: {} has no loop limit",
            gpu.name()
        );
        return;
    };
    let side = (limit as f64).sqrt() as usize + 1;
    let g = geom(1, side, side, 4, 4, 3, 1, Padding::Same);
    assert!(g.col_rows() > limit);
    if gemm::variant_available(gpu, gemm::Variant::Subgroup) {
        assert!(ConvMethod::Implicit.available(gpu, &g, ConvPass::Forward));
    }
    assert!(!ConvMethod::Implicit.available(gpu, &g, ConvPass::WeightGrad));
    let method = ConvMethod::builtin(gpu, &g, ConvPass::WeightGrad);
    assert_eq!(method, ConvMethod::Im2col);
    let mut rng = Rng::new(24);
    let grid = |rng: &mut Rng, n: usize| -> Vec<f32> {
        (0..n).map(|_| (rng.below(9) as f32 - 4.0) * 0.25).collect()
    };
    let x = grid(&mut rng, g.input_len());
    let dy = grid(&mut rng, g.output_len());
    let w = vec![0.0; g.weight_len()];
    let (xb, dyb) = (upload(&x), upload(&dy));
    let cols = zeros(g.col_rows() * g.col_cols());
    let db_at = (g.weight_len() * 4).next_multiple_of(256);
    let out = upload(&vec![f32::NAN; db_at / 4 + g.out_c]);
    let (dw, db) = (
        View::new(&out, 0, (g.weight_len() * 4) as u64),
        View::new(&out, db_at as u64, (g.out_c * 4) as u64),
    );
    let config = gemm::GemmConfig::default_for(gpu, ConvPass::WeightGrad.gemm_shape(&g));
    let d = conv::weight_grad(
        gpu,
        &g,
        (method, config),
        false,
        (&xb).into(),
        (&cols).into(),
        (&dyb).into(),
        dw,
        Some(db),
    )
    .unwrap();
    gpu.run("weight grad", &d.iter().collect::<Vec<_>>())
        .unwrap();
    let (_, want_dw, want_db) = cpu::conv2d_backward(&g, &x, &w, &dy);
    let got = gpu.read_f32(&out, db_at / 4 + g.out_c).unwrap();
    assert_close("dw", &got[..g.weight_len()], &want_dw, 0.0, 0.0);
    assert_close("db", &got[db_at / 4..], &want_db, 0.0, 0.0);
}
