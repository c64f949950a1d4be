//! Which layers the lowering fuses into a BatchNormalization's kernel
//! (`graph::fuse`), and where it must not: no adapter needed. What the
//! fused kernels compute is checked against the references in
//! tests/kernels/batchnorm.rs, their gradients in tests/gradcheck_program.rs,
//! and whole steps against the CPU in tests/executor.rs.

use gdl_gpu::graph::fuse::{self, Fused};
use gdl_gpu::graph::lower::lower;
use gdl_gpu::graph::params::ParamLayout;
use gdl_gpu::graph::program::{Inst, Mode, Program};
use gdl_gpu::graph::Graph;
use gdl_gpu::kernels::batchnorm::BnPost;
use gdl_gpu::kernels::dropout::DropoutMask;
use gdl_gpu::kernels::elementwise::ActKind;
use gdl_gpu::models::{self, toml_file};

fn program(graph: &Graph, mode: Mode) -> Program {
    lower(graph, &ParamLayout::new(graph), 4, mode).unwrap()
}

fn graph(layers: &str) -> Graph {
    let text = format!("input = [4, 4, 2]\n{layers}");
    toml_file::parse(&text, "fusion.toml")
        .and_then(|s| s.build_for(3))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn posts(p: &Program) -> Vec<BnPost> {
    p.insts
        .iter()
        .filter_map(|i| match i {
            Inst::BnTrain { post, .. } | Inst::BnBackward { post, .. } => Some(*post),
            _ => None,
        })
        .collect()
}

fn count(p: &Program, f: impl Fn(&Inst) -> bool) -> usize {
    p.insts.iter().filter(|i| f(i)).count()
}

fn elementwise(i: &Inst) -> bool {
    matches!(
        i,
        Inst::Act { .. }
            | Inst::ActBackward { .. }
            | Inst::Dropout { .. }
            | Inst::DropoutBackward { .. }
    )
}

#[test]
fn cnn_runs_every_activation_and_dropout_inside_its_batchnorm() {
    let g = models::builtin_graph("cnn").unwrap();
    let train = program(&g, Mode::Train);
    assert_eq!(count(&train, elementwise), 0);
    let leaky = Some(ActKind::LeakyRelu(0.2));
    let mut want = vec![
        BnPost {
            act: leaky,
            dropout: None
        };
        5
    ];
    want[4].dropout = Some(DropoutMask {
        rate: 0.5,
        stream: 0,
    });
    // Forward in layer order, backward in reverse.
    let mut both = want.clone();
    both.extend(want.iter().rev());
    assert_eq!(posts(&train), both);
    for mode in [Mode::Eval, Mode::Predict] {
        let p = program(&g, mode);
        assert_eq!(count(&p, elementwise), 0, "{mode:?}");
        let acts: Vec<_> = p
            .insts
            .iter()
            .filter_map(|i| match i {
                Inst::BnInfer { act, .. } => Some(*act),
                _ => None,
            })
            .collect();
        assert_eq!(acts, vec![leaky; 5], "{mode:?}");
    }
}

#[test]
fn a_value_someone_else_reads_is_not_fused_away() {
    // bn's output is also read by the Add; act's by the second Dense.
    let g = graph(
        r#"
[[layers]]
type = "Flatten"
[[layers]]
type = "Dense"
units = 5
[[layers]]
type = "BatchNormalization"
name = "bn"
[[layers]]
type = "Activation"
name = "act"
activation = "tanh"
[[layers]]
type = "Add"
inputs = ["act", "bn"]
[[layers]]
type = "BatchNormalization"
[[layers]]
type = "ReLU"
name = "relu"
[[layers]]
type = "Dropout"
rate = 0.5
[[layers]]
type = "Dense"
name = "second"
inputs = ["relu"]
units = 5
[[layers]]
type = "Add"
inputs = ["dropout", "second"]
[[layers]]
type = "Dense"
units = 3
activation = "softmax"
"#,
    );
    let plan = fuse::plan(&g);
    let at = |name: &str| plan[g.find(name).unwrap()];
    assert_eq!(at("bn"), Fused::Alone);
    assert_eq!(at("act"), Fused::Alone);
    let bn1 = g.find("batch_normalization").unwrap();
    assert_eq!(
        plan[bn1],
        Fused::Head(BnPost {
            act: Some(ActKind::Relu),
            dropout: None
        })
    );
    assert_eq!(at("relu"), Fused::Absorbed(bn1));
    assert_eq!(at("dropout"), Fused::Alone);
    let p = program(&g, Mode::Train);
    // tanh forward and backward, dropout forward and backward.
    assert_eq!(count(&p, elementwise), 4);
}

#[test]
fn the_output_softmax_stays_with_the_loss() {
    // BatchNorm → Activation("softmax") as the output: the softmax is the
    // loss's, not an activation kernel, so nothing fuses.
    let g = graph(
        r#"
[[layers]]
type = "Flatten"
[[layers]]
type = "Dense"
units = 3
[[layers]]
type = "BatchNormalization"
[[layers]]
type = "Activation"
activation = "softmax"
"#,
    );
    assert!(fuse::plan(&g).iter().all(|f| *f == Fused::Alone));
}

#[test]
fn dropout_right_after_batchnorm_fuses_and_rate_zero_is_left_alone() {
    let g = graph(
        r#"
[[layers]]
type = "BatchNormalization"
[[layers]]
type = "Dropout"
rate = 0.25
[[layers]]
type = "BatchNormalization"
name = "bn2"
[[layers]]
type = "Activation"
activation = "elu"
[[layers]]
type = "Dropout"
name = "off"
rate = 0.0
[[layers]]
type = "Flatten"
[[layers]]
type = "Dense"
units = 3
activation = "softmax"
"#,
    );
    let plan = fuse::plan(&g);
    assert_eq!(
        plan[1],
        Fused::Head(BnPost {
            act: None,
            dropout: Some(DropoutMask {
                rate: 0.25,
                stream: 0
            })
        })
    );
    let bn2 = g.find("bn2").unwrap();
    assert_eq!(
        plan[bn2],
        Fused::Head(BnPost {
            act: Some(ActKind::Elu(1.0)),
            dropout: None
        })
    );
    assert_eq!(plan[g.find("off").unwrap()], Fused::Alone);
}
