//! Whole training steps: the GPU executor against the CPU reference running
//! the same lowered program from the same weights and batch.

use gdl_gpu::data::Split;
use gdl_gpu::graph::params::ParamLayout;
use gdl_gpu::graph::Graph;
use gdl_gpu::kernels::adam::AdamConfig;
use gdl_gpu::models;
use gdl_gpu::train::cpu::CpuBackend;
use gdl_gpu::train::gpu::GpuBackend;
use gdl_gpu::train::{Backend, ModelValues};
use gdl_gpu::util::{compare, Rng};
use gdl_gpu::Gpu;

fn gpu() -> &'static Gpu {
    static GPU: std::sync::OnceLock<Gpu> = std::sync::OnceLock::new();
    GPU.get_or_init(|| Gpu::new().unwrap_or_else(|e| panic!("executor tests need an adapter: {e}")))
}

/// Random CIFAR-shaped images: CHW u8 with labels 0..9.
fn synthetic(n: usize, seed: u64) -> Split {
    let mut rng = Rng::new(seed);
    Split {
        pixels: (0..n * 3072).map(|_| rng.below(256) as u8).collect(),
        labels: (0..n).map(|_| rng.below(10) as u8).collect(),
        len: n,
    }
}

fn builtin(name: &str) -> Graph {
    models::builtin_graph(name).unwrap()
}

/// The CNN with its LeakyReLU slope changed (the layers are data).
fn cnn_with_slope(slope: f64) -> Graph {
    let mut spec = models::builtin("cnn").unwrap();
    for l in &mut spec.layers {
        if l.args.get("activation").and_then(|a| a.as_str()) == Some("leaky_relu") {
            l.class = "LeakyReLU".into();
            l.args.clear();
            l.args.insert("negative_slope".into(), slope.into());
        }
    }
    spec.build().unwrap()
}

fn initial(graph: &Graph, seed: u64) -> ModelValues {
    ModelValues::initial(&ParamLayout::new(graph), seed)
}

fn adam() -> AdamConfig {
    AdamConfig {
        lr: 5e-4,
        ..AdamConfig::default()
    }
}

/// One step of `kind` on both backends; every parameter, moving statistic
/// and Adam moment must agree. With `backward: false` only what the forward
/// pass decides is compared (loss, accuracy, moving statistics).
///
/// Why the CNN's backward is compared with LeakyReLU's slope at 1: the
/// derivative of LeakyReLU jumps at 0, and BatchNorm puts many of the CNN's
/// half-million pre-activations within rounding distance of 0, so GPU and
/// CPU (both right to f32 rounding) can take different branches for a few
/// elements and their gradients then differ by (1 − slope)·dy there, which
/// no rounding bound covers. Slope 1 keeps every other op of the model in
/// the step; the kink itself is tested exactly in the kernel suite and in
/// the MLP's whole step (ReLU, far fewer elements near 0).
fn one_step_matches(graph: &Graph, backward: bool) {
    let kind = &graph.name;
    let (train, test) = (synthetic(64, 1), synthetic(8, 2));
    let init = initial(graph, 7);
    let mut g = GpuBackend::new(gpu(), graph, &train, &test, adam(), 3, &init).unwrap();
    let mut c = CpuBackend::new(graph, &train, &test, adam(), 3, &init).unwrap();
    let perm: Vec<u32> = (0..64).rev().collect();
    g.set_permutation(&perm).unwrap();
    c.set_permutation(&perm).unwrap();
    g.train_step(0, 32).unwrap();
    c.train_step(0, 32).unwrap();

    let (gl, cl) = (g.metrics().unwrap(), c.metrics().unwrap());
    assert_eq!(gl.examples, 32);
    // The loss is a sum of 32 clipped logs of softmax probabilities
    // computed through the whole forward pass in f32.
    assert!(
        (gl.loss() - cl.loss()).abs() <= 1e-4 * cl.loss().abs().max(1.0),
        "{kind:?} loss {} vs {}",
        gl.loss(),
        cl.loss()
    );
    assert_eq!(gl.correct, cl.correct, "{kind:?} correct count");

    let (gv, cv) = (g.values().unwrap(), c.values().unwrap());
    // Moving statistics: 0.99·old + 0.01·batch statistic.
    compare(&gv.state, &cv.state, 1e-6, 1e-5)
        .unwrap_or_else(|e| panic!("{kind:?} moving statistics: {e}"));
    assert_eq!(gv.step, 1);
    if !backward {
        return;
    }
    // Gradients: after one step m = (1 − β1)·g. They are sums with heavy
    // cancellation (BatchNorm's backward subtracts the batch mean of dy, and
    // a conv bias feeding BatchNorm has an exact gradient of 0), so f32
    // errors scale with the magnitude of the terms, not of the result: bound
    // them by 1e-4 of the largest gradient plus 1e-3 relative.
    let grad = |m: &[f32]| m.iter().map(|v| v / 0.1).collect::<Vec<f32>>();
    let (gg, cg) = (grad(&gv.adam_m), grad(&cv.adam_m));
    let scale = cg.iter().fold(0f32, |a, v| a.max(v.abs())) as f64;
    compare(&gg, &cg, 1e-4 * scale, 1e-3).unwrap_or_else(|e| panic!("{kind:?} gradients: {e}"));
    // Adam's first step moves a weight by lr·g/(|g| + ε/√(1−β2)) = lr·g/(|g| +
    // 3.16e-6), whose slope in g is at most lr/3.16e-6: each weight may differ
    // by that times its own measured gradient difference, plus the rounding of
    // the weight itself. A weight moved the wrong way fails this.
    let lr = 5e-4f64;
    for i in 0..gv.trainable.len() {
        let dg = (gg[i] as f64 - cg[i] as f64).abs();
        let bound = lr * (dg / 3.16e-6).min(2.0) + 1e-7 + 1e-6 * lr;
        let diff = (gv.trainable[i] as f64 - cv.trainable[i] as f64).abs();
        assert!(diff <= bound, "{kind:?} parameter {i}: GPU {} vs CPU {} (diff {diff:.3e} > bound {bound:.3e}, gradient diff {dg:.3e})", gv.trainable[i], cv.trainable[i]);
    }
}

#[test]
fn mlp_step_matches_cpu() {
    one_step_matches(&builtin("mlp"), true);
}

#[test]
fn conv_step_matches_cpu() {
    one_step_matches(&builtin("conv"), true);
}

#[test]
fn cnn_step_matches_cpu() {
    one_step_matches(&cnn_with_slope(1.0), true);
    one_step_matches(&builtin("cnn"), false);
}

/// A residual CNN with pooling (the example model file): a DAG whose
/// tensors feed several layers, whose gradients are summed. The backward
/// pass is compared with tanh in place of ReLU, for the reason above; the
/// model as written is compared forward.
#[test]
fn residual_step_matches_cpu() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/models/examples/residual.toml"
    );
    let spec = models::load(file).unwrap();
    let mut smooth = spec.clone();
    for l in &mut smooth.layers {
        if l.class == "ReLU" {
            l.class = "Activation".into();
            l.args.insert("activation".into(), "tanh".into());
        }
    }
    one_step_matches(&smooth.build().unwrap(), true);
    one_step_matches(&spec.build().unwrap(), false);
}

/// 50 steps of the dense model: the per-step losses agree throughout.
#[test]
fn mlp_fifty_steps_track_cpu() {
    let graph = builtin("mlp");
    let (train, test) = (synthetic(256, 5), synthetic(8, 6));
    let init = initial(&graph, 11);
    let mut g = GpuBackend::new(gpu(), &graph, &train, &test, adam(), 1, &init).unwrap();
    let mut c = CpuBackend::new(&graph, &train, &test, adam(), 1, &init).unwrap();
    let perm: Vec<u32> = (0..256).collect();
    g.set_permutation(&perm).unwrap();
    c.set_permutation(&perm).unwrap();
    let mut worst: f64 = 0.0;
    for step in 0..50 {
        let start = (step * 32) % 256;
        g.reset_metrics().unwrap();
        c.reset_metrics().unwrap();
        g.train_step(start, 32).unwrap();
        c.train_step(start, 32).unwrap();
        let (gl, cl) = (g.metrics().unwrap().loss(), c.metrics().unwrap().loss());
        let rel = (gl - cl).abs() / cl.abs().max(1e-3);
        worst = worst.max(rel);
        // Rounding differences feed back through 50 Adam steps; the losses
        // must still agree to a few parts in 10^4 (a wrong gradient anywhere
        // shows up as percent-level drift within a few steps).
        assert!(
            rel < 5e-4,
            "step {step}: GPU loss {gl} vs CPU {cl} (rel {rel:.2e})"
        );
    }
    eprintln!("50 MLP steps: worst relative loss difference {worst:.2e}");
}

#[test]
fn evaluation_matches_cpu() {
    let graph = builtin("cnn");
    let (train, test) = (synthetic(32, 8), synthetic(37, 9));
    let init = initial(&graph, 13);
    let mut g = GpuBackend::new(gpu(), &graph, &train, &test, adam(), 1, &init).unwrap();
    let mut c = CpuBackend::new(&graph, &train, &test, adam(), 1, &init).unwrap();
    let (gm, cm) = (g.evaluate().unwrap(), c.evaluate().unwrap());
    assert_eq!(gm.examples, 37);
    assert_eq!(gm.correct, cm.correct);
    assert!((gm.loss() - cm.loss()).abs() < 1e-4 * cm.loss().max(1.0));
}

/// A model whose im2col at the full evaluation batch would pass lavapipe's
/// 128 MiB binding limit evaluates in batches that fit, with the CPU's
/// result (one batch of 250 there).
#[test]
fn wide_model_evaluates_in_batches_that_fit() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/models/examples/residual.toml"
    );
    let graph = models::load_graph(file).unwrap();
    let (train, test) = (synthetic(8, 30), synthetic(300, 31));
    let init = initial(&graph, 17);
    let mut g = GpuBackend::new(gpu(), &graph, &train, &test, adam(), 1, &init).unwrap();
    let mut c = CpuBackend::new(&graph, &train, &test, adam(), 1, &init).unwrap();
    let (gm, cm) = (g.evaluate().unwrap(), c.evaluate().unwrap());
    assert_eq!(gm.examples, 300);
    assert_eq!(gm.correct, cm.correct);
    assert!((gm.loss() - cm.loss()).abs() < 1e-4 * cm.loss().max(1.0));
}

/// The same seed on the same adapter gives the same run, bit for bit:
/// every kernel reduces in a fixed order and dropout's mask is a pure
/// function of (seed, step, element).
#[test]
fn same_seed_same_run() {
    let graph = builtin("cnn");
    let (train, test) = (synthetic(96, 21), synthetic(8, 22));
    let run = || {
        let mut g =
            GpuBackend::new(gpu(), &graph, &train, &test, adam(), 5, &initial(&graph, 5)).unwrap();
        g.set_permutation(&gdl_gpu::train::fit::permutation(96, 5, 0))
            .unwrap();
        for s in 0..3 {
            g.train_step(s * 32, 32).unwrap();
        }
        (g.values().unwrap(), g.metrics().unwrap())
    };
    let (a, ma) = run();
    let (b, mb) = run();
    assert_eq!(ma, mb);
    assert!(a == b, "two runs with one seed differ");
}
