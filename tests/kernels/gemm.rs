use gdl_gpu::gpu::View;
use gdl_gpu::kernels::gemm::{self, cpu, Epilogue, GemmConfig, GemmShape, Variant};
use gdl_gpu::util::{Rng, F32_EPS};

use crate::common::*;

/// One configuration of the optional parts.
#[derive(Clone, Copy, Debug)]
struct Opts {
    bias: bool,
    epilogue: Epilogue,
    accumulate: bool,
}

const PLAIN: Opts = Opts {
    bias: false,
    epilogue: Epilogue::None,
    accumulate: false,
};
/// With a gradient epilogue, `bias` stands for the forward activation
/// (m·n values of either sign).
const ALL_OPTS: [Opts; 7] = [
    PLAIN,
    Opts {
        bias: true,
        epilogue: Epilogue::None,
        accumulate: false,
    },
    Opts {
        bias: true,
        epilogue: Epilogue::Relu,
        accumulate: false,
    },
    Opts {
        bias: false,
        epilogue: Epilogue::LeakyRelu(0.2),
        accumulate: false,
    },
    Opts {
        bias: false,
        epilogue: Epilogue::None,
        accumulate: true,
    },
    Opts {
        bias: true,
        epilogue: Epilogue::ReluGrad,
        accumulate: false,
    },
    Opts {
        bias: true,
        epilogue: Epilogue::LeakyReluGrad(0.2),
        accumulate: false,
    },
];

const TRANSPOSES: [(bool, bool); 4] = [(false, false), (false, true), (true, false), (true, true)];

fn variants() -> Vec<Variant> {
    let gpu = gpu();
    let mut v: Vec<Variant> = gemm::VARIANTS
        .into_iter()
        .filter(|&v| gemm::variant_available(gpu, v))
        .collect();
    v.push(Variant::Auto);
    v
}

/// Checks `got` against `want` elementwise with the worst-case bound of
/// recursive summation: computing Σ_p a_ip·b_pj (+ c_ij + bias_j) in f32
/// errs by at most γ_(K+2)·S_ij ≈ (K+2)·u·S_ij, S = |A|·|B| + |C₀| + |bias|,
/// u = 2⁻²⁴, whatever the summation order (blocked, FMA or not). GPU and
/// reference each carry that error, hence 2·(K+2)·u·S. The epilogues are
/// 1-Lipschitz (slope ≤ 1), so they do not enlarge it.
#[track_caller]
fn assert_within_gemm_bound(case: &str, k: usize, got: &[f32], want: &[f32], s: &[f32]) {
    let rel = 2.0 * (k as f64 + 2.0) * F32_EPS;
    for i in 0..got.len() {
        let err = (got[i] as f64 - want[i] as f64).abs();
        // 1e-30 absorbs subnormal noise when S is exactly 0.
        let bound = rel * s[i] as f64 * (1.0 + 1e-6) + 1e-30;
        assert!(
            err <= bound,
            "{case}: element {i}: got {}, want {}, |diff| {err:.3e} > bound {bound:.3e}",
            got[i],
            want[i]
        );
    }
}

/// Test data: uniform in [-1, 1], or on the grid {-1, -0.75, …, 1}.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Data {
    Uniform,
    /// Products are multiples of 1/16 and every partial sum of the shapes
    /// tested stays below 2¹³ in magnitude, so all of them are exact in f32
    /// (2¹³·16 < 2²⁴) in any order: GPU and reference must agree bit for bit
    /// (the LeakyReLU multiply rounds identically on both). This catches a
    /// single wrong term that the worst-case bound would hide at large K.
    Grid,
}

fn data(rng: &mut Rng, kind: Data, n: usize) -> Vec<f32> {
    match kind {
        Data::Uniform => rng.vec(n, -1.0, 1.0),
        Data::Grid => (0..n).map(|_| (rng.below(9) as f32 - 4.0) * 0.25).collect(),
    }
}

fn run_case(rng: &mut Rng, variant: Variant, shape: GemmShape, opts: Opts, kind: Data) {
    let config = GemmConfig::for_variant(gpu(), variant, shape);
    run_config(rng, config, shape, opts, kind);
}

fn run_config(rng: &mut Rng, config: GemmConfig, shape: GemmShape, opts: Opts, kind: Data) {
    let gpu = gpu();
    let GemmShape { m, n, k, .. } = shape;
    let a = data(rng, kind, m * k);
    let b = data(rng, kind, k * n);
    let grad = opts.epilogue.is_grad();
    let bias = opts
        .bias
        .then(|| data(rng, kind, if grad { m * n } else { n }));
    // Accumulate into nonzero C; otherwise start from garbage to prove it
    // is overwritten.
    let c0 = if opts.accumulate {
        data(rng, kind, m * n)
    } else {
        vec![f32::NAN; m * n]
    };

    let ab = upload(&a);
    let bb = upload(&b);
    let biasb = bias.as_ref().map(|v| upload(v));
    let cb = upload(&c0);
    let ds = gemm::gemm_config(
        gpu,
        config,
        shape,
        &ab,
        &bb,
        biasb.as_ref().map(Into::into),
        &cb,
        opts.epilogue,
        opts.accumulate,
    )
    .unwrap();
    gpu.run("gemm test", &ds.iter().collect::<Vec<_>>())
        .unwrap();
    let got = read(&cb, m * n);

    let mut want = c0.clone();
    cpu::gemm(
        shape,
        &a,
        &b,
        bias.as_deref(),
        &mut want,
        opts.epilogue,
        opts.accumulate,
    );

    let case = format!("{} {shape:?} {opts:?} {kind:?}", config.label());
    if kind == Data::Grid {
        assert_close(&case, &got, &want, 0.0, 0.0);
        return;
    }
    // S = |A|·|B| + |C₀| + |bias|, computed by the reference on |values|.
    let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
    let mut s = if opts.accumulate {
        abs(&c0)
    } else {
        vec![0.0; m * n]
    };
    // A gradient epilogue only scales by 1 or the slope: |C| ≤ |A|·|B|.
    let abias = bias.as_deref().filter(|_| !grad).map(abs);
    cpu::gemm(
        shape,
        &abs(&a),
        &abs(&b),
        abias.as_deref(),
        &mut s,
        Epilogue::None,
        false,
    );
    if opts.accumulate {
        for (si, ci) in s.iter_mut().zip(&c0) {
            *si += ci.abs();
        }
    }
    assert_within_gemm_bound(&case, k, &got, &want, &s);
}

fn shape(m: usize, n: usize, k: usize, (ta, tb): (bool, bool)) -> GemmShape {
    GemmShape::new(m, n, k, ta, tb)
}

/// Small and awkward shapes: 1, primes, not multiples of 4, 8 or the 64-wide
/// tile, M and N ≡ 4 (mod 8) (half-blocks on the vec4 paths); every variant
/// and transpose; every epilogue, bias and accumulate on a shape whose C is
/// stored in scalars and one stored in vec4s (each option is a pipeline of
/// its own, seconds each to compile on a software adapter), plain products
/// on the rest.
#[test]
fn gemm_awkward_shapes_all_options() {
    let mut rng = Rng::new(11);
    let dims = [
        (1, 1, 1),
        (7, 13, 5),
        (31, 17, 29),
        (65, 67, 33),
        (36, 44, 12),
        (4, 36, 8),
        (3, 2, 64),
    ];
    let every_option = [(31, 17, 29), (36, 44, 12)];
    for variant in variants() {
        for &(m, n, k) in &dims {
            let options: &[Opts] = if every_option.contains(&(m, n, k)) {
                &ALL_OPTS
            } else {
                &[PLAIN]
            };
            for t in TRANSPOSES {
                for &opts in options {
                    run_case(&mut rng, variant, shape(m, n, k, t), opts, Data::Uniform);
                }
            }
        }
    }
}

/// Every tiled configuration the tuner may pick (4×4 and 8×8 register
/// blocks, 64- and 128-wide tiles, 8- and 16-deep), on shapes just past and
/// short of their tiles, K past and short of the depth, and vec4 and scalar
/// paths (dimensions ≡ 0 and ≢ 0 mod 4), every transpose; every option on a
/// vec4 and a scalar C (the epilogue is one pipeline per option, and only
/// the stores, not the transposes, meet it).
#[test]
fn gemm_tiled_every_configuration() {
    let gpu = gpu();
    let mut rng = Rng::new(16);
    let dims = [
        (1, 1, 1),
        (129, 131, 37),
        (127, 68, 20),
        (64, 128, 16),
        (36, 3, 9),
    ];
    let every_option = [(129, 131, 37), (127, 68, 20)];
    for &(m, n, k) in &dims {
        for t in TRANSPOSES {
            let s = shape(m, n, k, t);
            let configs: Vec<GemmConfig> = gemm::candidates(gpu, s)
                .into_iter()
                .filter(|c| c.variant() == Variant::Tiled)
                .collect();
            assert!(configs.len() >= 4, "{s:?}: {configs:?}");
            let options: &[Opts] = if t == TRANSPOSES[0] && every_option.contains(&(m, n, k)) {
                &ALL_OPTS
            } else {
                &[PLAIN]
            };
            for config in configs {
                for &opts in options {
                    run_config(&mut rng, config, s, opts, Data::Uniform);
                }
                run_config(&mut rng, config, s, PLAIN, Data::Grid);
            }
        }
    }
}

/// The models' real shapes, in the layouts training uses them (forward NN
/// with bias and activation, input gradient NT, weight gradient TN
/// accumulated), and every layout once with a plain product.
#[test]
fn gemm_model_shapes() {
    let mut rng = Rng::new(12);
    let fwd = Opts {
        bias: true,
        epilogue: Epilogue::LeakyRelu(0.2),
        accumulate: false,
    };
    let acc = Opts {
        bias: false,
        epilogue: Epilogue::None,
        accumulate: true,
    };
    let nn = (false, false);
    let nt = (false, true);
    let tn = (true, false);
    let mut cases = Vec::new();
    // Dense layers 3072→200→150→10 at batch 32: forward, dX, dW.
    for &(i, o) in &[(3072, 200), (200, 150), (150, 10)] {
        cases.push((shape(32, o, i, nn), fwd));
        cases.push((shape(32, i, o, nt), PLAIN));
        cases.push((shape(i, o, 32, tn), acc));
    }
    // im2col conv, 3×3×32 → 32 channels over batch 32 of 16×16 maps.
    let (cm, cn, ck) = (32 * 16 * 16, 32, 3 * 3 * 32);
    cases.push((shape(cm, cn, ck, nn), fwd));
    cases.push((shape(cm, ck, cn, nt), PLAIN));
    cases.push((shape(ck, cn, cm, tn), acc));
    for t in TRANSPOSES {
        cases.push((shape(32, 200, 3072, t), PLAIN));
    }
    // Every conv of the CNN and the chapter's sketch (rows = batch·out_h·out_w,
    // k = kh·kw·in_c, n = filters), and the CNN's dense layers: forward, dX, dW.
    for &(rows, k, n) in &[
        (32 * 32 * 32, 27, 32),
        (32 * 16 * 16, 288, 32),
        (32 * 16 * 16, 288, 64),
        (32 * 8 * 8, 576, 64),
        (32 * 16 * 16, 48, 10),
        (32 * 8 * 8, 90, 20),
        (32, 4096, 128),
        (32, 128, 10),
    ] {
        cases.push((shape(rows, n, k, nn), fwd));
        cases.push((shape(rows, k, n, nt), PLAIN));
        cases.push((shape(k, n, rows, tn), PLAIN));
    }
    for variant in variants() {
        for &(s, opts) in &cases {
            run_case(&mut rng, variant, s, opts, Data::Grid);
            run_case(&mut rng, variant, s, opts, Data::Uniform);
        }
    }
}

/// Register blocks of every shape the overrides allow (the tuner's 16×16,
/// 8×16 and 8×4 among them) at M and N just below, at and just above their
/// edges, K not a multiple of 4 (scalar loads) and a multiple (vec4 loads);
/// every transpose for 16×16, NN and TT for the others; every option in NN
/// at a scalar and a vec4 C (each layout, block and option a pipeline to
/// compile: lavapipe takes seconds each).
#[test]
fn gemm_regblock_blocks() {
    let mut rng = Rng::new(16);
    let dims = [(17, 15, 12), (16, 16, 8), (15, 17, 7)];
    for (rm, rn) in [(4, 4), (2, 4), (2, 1), (3, 2), (1, 4), (4, 1)] {
        let config = GemmConfig::RegisterBlocked { wg: 8, rm, rn };
        let layouts: &[(bool, bool)] = if rm == 4 && rn == 4 {
            &TRANSPOSES
        } else {
            &[(false, false), (true, true)]
        };
        for &(m, n, k) in &dims {
            for &t in layouts {
                let s = shape(m, n, k, t);
                run_config(&mut rng, config, s, PLAIN, Data::Grid);
                if t == TRANSPOSES[0] && (m, n, k) != (15, 17, 7) {
                    for opts in ALL_OPTS {
                        run_config(&mut rng, config, s, opts, Data::Uniform);
                    }
                }
            }
        }
    }
}

/// Every plan of the subgroup kernel (own A or op(B)ᵀ, with or without the
/// pack pre-pass, whose vec4 tile path needs the packed dimension % 4 == 0)
/// on shapes that reach it, checked exactly (grid data) and within the bound.
#[test]
fn gemm_subgroup_plans() {
    use gemm::SubgroupPlan;
    let plans = [
        // NN, K % 4 == 0: A as is.
        (shape(33, 29, 40, (false, false)), false, false),
        // NN, K % 4 != 0 (im2col of 3 channels, K = 27): A repacked.
        (shape(70, 32, 27, (false, false)), false, true),
        // TN, A much larger than B (CNN weight gradient): op(B)ᵀ repacked,
        // Cᵀ computed; N % 4 == 0 takes the vec4 tile path, N odd does not.
        (shape(36, 8, 300, (true, false)), true, true),
        (shape(36, 7, 300, (true, false)), true, true),
        // TN with small K (MLP weight gradient): A repacked, M odd and M % 4.
        (shape(45, 30, 8, (true, false)), false, true),
        (shape(44, 30, 8, (true, false)), false, true),
        // TT, K % 4 == 0: B (N×K) as is, Cᵀ computed.
        (shape(30, 6, 64, (true, true)), true, false),
    ];
    for (s, out_t, pack) in plans {
        let plan = SubgroupPlan::new(s);
        assert_eq!((plan.out_t, plan.pack), (out_t, pack), "{s:?}");
    }
    if !gemm::variant_available(gpu(), Variant::Subgroup) {
        eprintln!(
            "gemm_subgroup_plans: GPU part skipped: {} has no 8-lane subgroups",
            gpu().name()
        );
        return;
    }
    let mut rng = Rng::new(14);
    for (s, _, _) in plans {
        for opts in ALL_OPTS {
            run_case(&mut rng, Variant::Subgroup, s, opts, Data::Grid);
            run_case(&mut rng, Variant::Subgroup, s, opts, Data::Uniform);
        }
    }
}

/// The fast reference against the f64 triple loop, on small shapes in every
/// layout and option (`matrixmultiply` is trusted for speed, not blindly).
#[test]
fn cpu_reference_matches_naive() {
    let mut rng = Rng::new(13);
    for &(m, n, k) in &[(1, 1, 1), (7, 13, 5), (31, 17, 29), (65, 67, 33)] {
        for t in TRANSPOSES {
            for opts in ALL_OPTS {
                let s = shape(m, n, k, t);
                let a = rng.vec(m * k, -1.0, 1.0);
                let b = rng.vec(k * n, -1.0, 1.0);
                let len = if opts.epilogue.is_grad() { m * n } else { n };
                let bias = opts.bias.then(|| rng.vec(len, -1.0, 1.0));
                let c0 = rng.vec(m * n, -1.0, 1.0);
                let mut fast = c0.clone();
                let mut naive = c0.clone();
                cpu::gemm(
                    s,
                    &a,
                    &b,
                    bias.as_deref(),
                    &mut fast,
                    opts.epilogue,
                    opts.accumulate,
                );
                cpu::gemm_naive(
                    s,
                    &a,
                    &b,
                    bias.as_deref(),
                    &mut naive,
                    opts.epilogue,
                    opts.accumulate,
                );
                // Naive is exact up to one rounding; fast errs by at most
                // (K+2)·u·S with S ≤ K + 2 for entries in [-1, 1].
                let tol = (k as f64 + 2.0) * (k as f64 + 2.0) * F32_EPS + F32_EPS;
                assert_close(&format!("{s:?} {opts:?}"), &fast, &naive, tol, 0.0);
            }
        }
    }
}

#[test]
fn unavailable_variant_is_an_error() {
    let gpu = gpu();
    if gemm::variant_available(gpu, Variant::Subgroup) {
        eprintln!(
            "unavailable_variant_is_an_error: skipped: {} has the subgroup variant",
            gpu.name()
        );
        return;
    }
    let a = zeros(4);
    let c = zeros(1);
    let r = gemm::gemm_variant(
        gpu,
        Variant::Subgroup,
        shape(1, 1, 4, (false, false)),
        &a,
        &a,
        None,
        &c,
        Epilogue::None,
        false,
    );
    assert!(matches!(r, Err(gdl_gpu::GpuError::MissingFeature { .. })));
}

/// C = op(A)·op(B) with db = Σ_k op(B)[k][·] in the same call, for every
/// candidate configuration, with db after C in one buffer (the subgroup
/// kernel's fused sums) and in a buffer of its own (a column-sums pass).
/// Grid data keeps every partial sum exact, so both must match bit for bit.
#[test]
fn gemm_bias_grad_every_candidate() {
    let gpu = gpu();
    let mut rng = Rng::new(15);
    let round16 = |bytes: usize| bytes.next_multiple_of(16) as u64;
    for s in [
        shape(200, 150, 32, (true, false)),
        shape(150, 10, 32, (true, false)),
        shape(45, 30, 8, (true, false)),
        shape(36, 7, 300, (true, false)),
        shape(33, 29, 40, (false, false)),
        shape(1, 1, 1, (true, false)),
    ] {
        let GemmShape { m, n, k, .. } = s;
        let a = data(&mut rng, Data::Grid, m * k);
        let b = data(&mut rng, Data::Grid, k * n);
        let mut want_c = vec![0.0; m * n];
        cpu::gemm_naive(s, &a, &b, None, &mut want_c, Epilogue::None, false);
        let want_db = gdl_gpu::kernels::reduce::cpu::column_sums(k, n, &b);
        let (ab, bb) = (upload(&a), upload(&b));
        for config in gemm::candidates(gpu, s) {
            // db 256-aligned after C (the storage offset alignment).
            let db_at = (m * n * 4).next_multiple_of(256);
            let joint = upload(&vec![f32::NAN; db_at / 4 + n + 4]);
            let (c1, db1) = (
                View::new(&joint, 0, round16(m * n * 4)),
                View::new(&joint, db_at as u64, round16(n * 4)),
            );
            let (c2, db2) = (upload(&vec![f32::NAN; m * n]), upload(&vec![f32::NAN; n]));
            for (c, db, at, how) in [
                (c1, db1, db_at / 4, "one buffer"),
                ((&c2).into(), (&db2).into(), 0, "two buffers"),
            ] {
                let d = gemm::gemm_bias_grad(gpu, config, s, [(&ab).into(), (&bb).into(), c, db])
                    .unwrap();
                gpu.run("gemm bias grad", &d.iter().collect::<Vec<_>>())
                    .unwrap();
                let case = format!("{s:?} {} ({how})", config.label());
                let got_c = gpu.read_f32(c.buffer, m * n).unwrap();
                assert_close(&format!("{case}: C"), &got_c, &want_c, 0.0, 0.0);
                let got_db = gpu.read_f32(db.buffer, at + n).unwrap();
                assert_close(&format!("{case}: db"), &got_db[at..], &want_db, 0.0, 0.0);
            }
        }
    }
}

/// K past what one dispatch may loop over on a software adapter (see
/// `gemm::max_k_per_dispatch`: Mesa ends an invocation's loops after 65,535
/// iterations): a weight gradient's layout (TN) runs in K slices and comes
/// out exact on grid data (every partial sum a multiple of 1/16 below 2²⁰,
/// so exact in f32 in any order), plain and accumulating, for every
/// variant; another layout there is a clear error, not a short sum.
#[test]
fn gemm_k_past_the_software_loop_limit() {
    let gpu = gpu();
    let mut rng = Rng::new(17);
    let acc = Opts {
        bias: false,
        epilogue: Epilogue::None,
        accumulate: true,
    };
    for variant in variants() {
        if variant == Variant::Auto {
            continue;
        }
        let limit = gemm::max_k_per_dispatch(gpu, variant).unwrap_or(1 << 15);
        // Past twice the limit: the limit keeps half of Mesa's 65,535
        // iterations in reserve, so this K would be cut short unsliced.
        let s = shape(8, 12, 2 * limit + limit / 2 + 100, (true, false));
        let config = GemmConfig::for_variant(gpu, variant, s);
        run_config(&mut rng, config, s, PLAIN, Data::Grid);
        run_config(&mut rng, config, s, acc, Data::Grid);
        if gemm::max_k_per_dispatch(gpu, variant).is_none() {
            continue;
        }
        let nn = shape(1, 4, limit + 4, (false, false));
        let (a, b, c) = (zeros(limit + 4), zeros(4 * (limit + 4)), zeros(4));
        let r = gemm::gemm_config(
            gpu,
            GemmConfig::for_variant(gpu, variant, nn),
            nn,
            &a,
            &b,
            None,
            &c,
            Epilogue::None,
            false,
        );
        let err = r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err.contains("65,535") && err.contains(&format!("1x4x{}", limit + 4)),
            "{variant:?}: {err:?}"
        );
    }
}

/// The same slices with the bias gradient in the call (db = Σ_k B[k][·]
/// over the whole K, not a slice).
#[test]
fn gemm_bias_grad_past_the_software_loop_limit() {
    let gpu = gpu();
    let mut rng = Rng::new(18);
    let Some(limit) = gemm::max_k_per_dispatch(gpu, Variant::Subgroup) else {
        eprintln!(
            "gemm_bias_grad_past_the_software_loop_limit: skipped: {} has no loop limit",
            gpu.name()
        );
        return;
    };
    let s = shape(36, 8, 2 * limit + 68, (true, false));
    let GemmShape { m, n, k, .. } = s;
    let a = data(&mut rng, Data::Grid, m * k);
    let b = data(&mut rng, Data::Grid, k * n);
    let mut want_c = vec![0.0; m * n];
    cpu::gemm_naive(s, &a, &b, None, &mut want_c, Epilogue::None, false);
    let want_db = gdl_gpu::kernels::reduce::cpu::column_sums(k, n, &b);
    let (ab, bb) = (upload(&a), upload(&b));
    let db_at = (m * n * 4).next_multiple_of(256);
    let joint = upload(&vec![f32::NAN; db_at / 4 + n]);
    let c = View::new(&joint, 0, (m * n * 4) as u64);
    let db = View::new(&joint, db_at as u64, (n * 4) as u64);
    let config = GemmConfig::default_for(gpu, s);
    let d = gemm::gemm_bias_grad(gpu, config, s, [(&ab).into(), (&bb).into(), c, db]).unwrap();
    gpu.run("gemm bias grad", &d.iter().collect::<Vec<_>>())
        .unwrap();
    let got = gpu.read_f32(&joint, db_at / 4 + n).unwrap();
    assert_close("C", &got[..m * n], &want_c, 0.0, 0.0);
    assert_close("db", &got[db_at / 4..], &want_db, 0.0, 0.0);
}
