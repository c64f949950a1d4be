//! Whole-program gradient check: for tiny models that together use every
//! layer, the gradient the lowered backward program computes (on the CPU
//! backend) matches central finite differences of the loss computed by the
//! lowered forward program, for every parameter tensor. The GPU ≡ CPU tests
//! cannot catch a wrong gradient rule, since both backends run the same
//! rules; this can. Pure CPU, no adapter.

use gdl_gpu::graph::cpu::{run_prefix, CpuState, StepInputs};
use gdl_gpu::graph::lower::lower;
use gdl_gpu::graph::params::ParamLayout;
use gdl_gpu::graph::program::{Inst, Mode, Program};
use gdl_gpu::graph::Graph;
use gdl_gpu::kernels::adam::AdamConfig;
use gdl_gpu::models::toml_file;
use gdl_gpu::util::Rng;

const BATCH: usize = 3;
const CLASSES: usize = 3;

struct Case {
    graph: Graph,
    program: Program,
    pixels: Vec<u8>,
    labels: Vec<u8>,
    hwc: (usize, usize, usize),
}

fn case(toml: &str, seed: u64) -> Case {
    let graph = toml_file::parse(toml, "gradcheck.toml")
        .and_then(|s| s.build_for(CLASSES))
        .unwrap_or_else(|e| panic!("{e}"));
    let [h, w, c] = graph.input_shape() else {
        unreachable!()
    };
    let hwc = (*h, *w, *c);
    let layout = ParamLayout::new(&graph);
    let program = lower(&graph, &layout, BATCH, Mode::Train).unwrap();
    let mut rng = Rng::new(seed);
    Case {
        pixels: (0..BATCH * h * w * c)
            .map(|_| rng.below(256) as u8)
            .collect(),
        labels: (0..BATCH).map(|i| (i % CLASSES) as u8).collect(),
        graph,
        program,
        hwc,
    }
}

impl Case {
    fn inputs<'a>(&'a self, indices: &'a [u32]) -> StepInputs<'a> {
        StepInputs {
            pixels: &self.pixels,
            labels: &self.labels,
            hwc: self.hwc,
            indices,
            batch_base: 0,
            seed: 5,
            step: 1,
            adam: AdamConfig::default(),
        }
    }

    /// The mean cross-entropy of the forward program's logits, in f64.
    fn loss(&self, st: &CpuState) -> f64 {
        let mut st = st.clone();
        let head = self
            .program
            .insts
            .iter()
            .position(|i| matches!(i, Inst::SoftmaxXent { .. }))
            .unwrap();
        let indices: Vec<u32> = (0..BATCH as u32).collect();
        let run = run_prefix(
            &self.program,
            &mut st,
            &self.inputs(&indices),
            &mut [0; 4],
            head,
        );
        let logits = run.tensor(self.program.logits);
        (0..BATCH)
            .map(|b| {
                let z: Vec<f64> = logits[b * CLASSES..(b + 1) * CLASSES]
                    .iter()
                    .map(|&v| v as f64)
                    .collect();
                let m = z.iter().cloned().fold(f64::MIN, f64::max);
                let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
                lse - z[self.labels[b] as usize]
            })
            .sum::<f64>()
            / BATCH as f64
    }

    /// The backward program's parameter gradients (everything but Adam).
    fn gradients(&self, st: &CpuState) -> Vec<f32> {
        let mut st = st.clone();
        let indices: Vec<u32> = (0..BATCH as u32).collect();
        let n = self.program.insts.len() - 1;
        assert!(matches!(self.program.insts[n], Inst::Adam));
        run_prefix(
            &self.program,
            &mut st,
            &self.inputs(&indices),
            &mut [0; 4],
            n,
        );
        st.grads
    }
}

/// Checks every parameter tensor of `toml`'s model.
///
/// Tolerance: the forward pass runs in f32, so the loss carries a rounding
/// error of about 1e-6 relative (a few ulp per op, ~20 ops deep); a
/// central difference with step h divides that by 2h, giving ~5e-5
/// absolute at h = 1e-2 for a loss near 1. The truncation error is
/// h²/6·f‴ ≈ 2e-5·f‴ for these smooth activations. So each sampled
/// entry must agree within 1e-3 absolute + 2e-2 relative: well above both,
/// and far below the error of a wrong gradient rule (a missing term, a
/// transposed operand or a lost accumulation), which is of the order of the
/// gradient itself.
fn check(name: &str, toml: &str) {
    let c = case(toml, 1);
    let layout = ParamLayout::new(&c.graph);
    let (t, s) = layout.initial_values(3);
    let mut st = CpuState::new(&layout, t, s);
    // Non-trivial BatchNorm affine parameters and biases, so their
    // gradients are not a special case of the initial values.
    let mut rng = Rng::new(9);
    for e in layout.entries.iter().filter(|e| e.spec.trainable) {
        if e.spec.name != "kernel" {
            for v in &mut st.params[e.offset..e.offset + e.spec.len()] {
                *v += rng.uniform(-0.3, 0.3);
            }
        }
    }
    let analytic = c.gradients(&st);
    let h = 1e-2f32;
    let mut checked = 0;
    let mut worst = 0f64;
    for e in layout.entries.iter().filter(|e| e.spec.trainable) {
        let len = e.spec.len();
        // Up to 6 entries per tensor, spread over it.
        let picks: Vec<usize> = (0..6.min(len)).map(|i| i * len / 6.min(len)).collect();
        for i in picks {
            let at = e.offset + i;
            let mut plus = st.clone();
            plus.params[at] += h;
            let mut minus = st.clone();
            minus.params[at] -= h;
            let num = (c.loss(&plus) - c.loss(&minus)) / (2.0 * h as f64);
            let ana = analytic[at] as f64;
            worst = worst.max((num - ana).abs() / (1e-3 + 2e-2 * ana.abs()));
            assert!(
                (num - ana).abs() <= 1e-3 + 2e-2 * ana.abs(),
                "{name}: {}[{i}]: finite difference {num:.6e}, backward program {ana:.6e}",
                e.name
            );
            checked += 1;
        }
    }
    assert!(checked >= 6, "{name}: only {checked} entries checked");
    eprintln!("{name}: {checked} entries, worst error {worst:.3} of the tolerance");
}

/// Conv2D (non-square kernel and strides, same and valid padding, with and
/// without bias, tanh/gelu/elu/sigmoid activations), BatchNormalization on
/// images and on features, Add (a residual, so a tensor with two
/// consumers), MaxPooling2D, AveragePooling2D (same padding), Concatenate,
/// GlobalAveragePooling2D, Flatten, Reshape, Dropout, Dense.
#[test]
fn every_layer_gradient_matches_finite_differences() {
    check(
        "residual",
        r#"
input = [7, 6, 2]

[[layers]]
type = "Conv2D"
name = "c1"
filters = 4
kernel_size = [3, 2]
padding = "same"
activation = "tanh"

[[layers]]
type = "BatchNormalization"

[[layers]]
type = "Activation"
name = "e"
activation = "elu"

[[layers]]
type = "Conv2D"
filters = 4
kernel_size = 1
use_bias = false
activation = "gelu"

[[layers]]
type = "Add"
name = "sum"
inputs = ["conv2d", "e"]

[[layers]]
type = "MaxPooling2D"
name = "mp"
pool_size = 2
strides = [2, 1]

[[layers]]
type = "AveragePooling2D"
name = "ap"
inputs = ["sum"]
pool_size = [2, 2]
strides = [2, 1]
padding = "valid"

[[layers]]
type = "Concatenate"
inputs = ["mp", "ap"]

[[layers]]
type = "Dropout"
rate = 0.25

[[layers]]
type = "Conv2D"
name = "c3"
filters = 3
kernel_size = 2
strides = [1, 2]
activation = "sigmoid"

[[layers]]
type = "GlobalAveragePooling2D"
name = "gap"

[[layers]]
type = "Flatten"
name = "flat"
inputs = ["c3"]

[[layers]]
type = "Dense"
name = "d1"
units = 3
activation = "tanh"

[[layers]]
type = "Dense"
name = "d2"
inputs = ["gap"]
units = 3
use_bias = false

[[layers]]
type = "Add"
name = "heads"
inputs = ["d1", "d2"]

[[layers]]
type = "BatchNormalization"

[[layers]]
type = "Reshape"
target_shape = [-1]

[[layers]]
type = "Dense"
units = 3
activation = "softmax"
"#,
    );
}

/// A tensor read by three layers (the input of a block feeding two
/// branches and the skip), and an Add of a layer with itself.
#[test]
fn gradients_sum_over_every_consumer() {
    check(
        "fan-out",
        r#"
input = [4, 4, 1]

[[layers]]
type = "Conv2D"
name = "stem"
filters = 2
kernel_size = 3
padding = "same"
activation = "tanh"

[[layers]]
type = "Conv2D"
name = "a"
filters = 2
kernel_size = 3
padding = "same"
activation = "sigmoid"

[[layers]]
type = "Conv2D"
name = "b"
inputs = ["stem"]
filters = 2
kernel_size = 1

[[layers]]
type = "Add"
inputs = ["a", "b", "stem"]

[[layers]]
type = "Add"
name = "twice"
inputs = ["add", "add"]

[[layers]]
type = "Flatten"

[[layers]]
type = "Dense"
units = 3
activation = "softmax"
"#,
    );
}

/// The layers the lowering fuses into a BatchNormalization's kernel
/// (`graph::fuse`): BN → activation → Dropout on images and on features, BN
/// → Dropout, BN → activation, and a BN whose output has a second reader,
/// which stays unfused. ELU (alpha 1: a continuous derivative) stands in for
/// the CNN's LeakyReLU, whose kink a finite difference of h = 1e-2 straddles
/// often enough to miss by more than the tolerance (the unfused program
/// misses by the same amount); LeakyReLU's fused rule is the elementwise
/// kernel's, checked exactly in tests/kernels/elementwise.rs.
#[test]
fn fused_batchnorm_gradient_matches_finite_differences() {
    check(
        "fused",
        r#"
input = [5, 4, 2]

[[layers]]
type = "Conv2D"
filters = 4
kernel_size = 3
padding = "same"

[[layers]]
type = "BatchNormalization"

[[layers]]
type = "Activation"
activation = "gelu"

[[layers]]
type = "Dropout"
rate = 0.3

[[layers]]
type = "Conv2D"
name = "c2"
filters = 3
kernel_size = 2

[[layers]]
type = "BatchNormalization"
name = "bn_shared"

[[layers]]
type = "Activation"
name = "act2"
activation = "elu"

[[layers]]
type = "Add"
inputs = ["act2", "bn_shared"]

[[layers]]
type = "BatchNormalization"

[[layers]]
type = "Dropout"
rate = 0.5

[[layers]]
type = "Flatten"

[[layers]]
type = "Dense"
units = 6

[[layers]]
type = "BatchNormalization"

[[layers]]
type = "Activation"
activation = "tanh"

[[layers]]
type = "Dense"
units = 5

[[layers]]
type = "BatchNormalization"

[[layers]]
type = "Activation"
activation = "elu"

[[layers]]
type = "Dropout"
rate = 0.5

[[layers]]
type = "Dense"
units = 3
activation = "softmax"
"#,
    );
}
