//! The training step's instruction budgets (issue 8: the CNN in at most 30,
//! the MLP in at most 12), what each step is made of, and the gradient fold
//! of `graph::peephole`: no adapter needed. What the instructions compute
//! is checked in tests/executor.rs (GPU ≡ CPU) and tests/gradcheck_program.rs.

use gdl_gpu::graph::lower::lower;
use gdl_gpu::graph::params::ParamLayout;
use gdl_gpu::graph::program::{Inst, Mode, Program};
use gdl_gpu::kernels::gemm::Epilogue;
use gdl_gpu::models;

fn train_program(model: &str) -> Program {
    let g = models::builtin_graph(model).unwrap();
    lower(&g, &ParamLayout::new(&g), 32, Mode::Train).unwrap()
}

fn kinds(p: &Program) -> Vec<&'static str> {
    p.insts
        .iter()
        .map(|i| match i {
            Inst::Gather { .. } => "gather",
            Inst::Gemm { .. } => "gemm",
            Inst::ConvForward { .. } => "conv forward",
            Inst::ConvWeightGrad { .. } => "conv weight grad",
            Inst::ConvInputGrad { .. } => "conv input grad",
            Inst::BnTrain { .. } => "bn",
            Inst::BnBackward { .. } => "bn backward",
            Inst::SoftmaxXent { .. } => "xent",
            Inst::Dropout { .. } | Inst::DropoutBackward { .. } => "dropout",
            Inst::Act { .. } | Inst::ActBackward { .. } => "act",
            Inst::Adam => "adam",
            _ => "other",
        })
        .collect()
}

#[test]
fn mlp_step_is_eleven_instructions() {
    let p = train_program("mlp");
    assert!(p.insts.len() <= 12, "{:?}", kinds(&p));
    // Gather, three GEMMs and the loss; per layer backward the weight
    // gradient (bias gradient inside) and, but for the first, the input
    // gradient with the ReLU's gradient as its epilogue; Adam.
    assert_eq!(
        kinds(&p),
        [
            "gather", "gemm", "gemm", "gemm", "xent", "gemm", "gemm", "gemm", "gemm", "gemm",
            "adam"
        ]
    );
    let grad_epilogues = p
        .insts
        .iter()
        .filter(|i| {
            matches!(
                i,
                Inst::Gemm {
                    epilogue: Epilogue::ReluGrad,
                    bias: Some(_),
                    ..
                }
            )
        })
        .count();
    assert_eq!(grad_epilogues, 2, "both hidden ReLUs fold into a dX GEMM");
    let with_db = p
        .insts
        .iter()
        .filter(|i| matches!(i, Inst::Gemm { db: Some(_), .. }))
        .count();
    assert_eq!(with_db, 3, "every Dense's bias gradient rides its dW GEMM");
}

#[test]
fn cnn_step_is_thirty_instructions() {
    let p = train_program("cnn");
    assert!(
        p.insts.len() <= 30,
        "{} instructions: {:?}",
        p.insts.len(),
        kinds(&p)
    );
    let n = |k: &str| kinds(&p).iter().filter(|&&x| x == k).count();
    assert_eq!(n("conv forward"), 4);
    assert_eq!(n("conv weight grad"), 4);
    // The first convolution's input is the image: no gradient.
    assert_eq!(n("conv input grad"), 3);
    assert_eq!(n("act"), 0, "every activation runs inside its BatchNorm");
    assert_eq!(n("other"), 0);
}

/// The fold needs the GEMM that wrote the gradient alone: a ReLU whose
/// output feeds two layers gets its gradient from two GEMMs (the second
/// accumulating), so its backward keeps its own instruction, while a ReLU
/// with one consumer folds.
#[test]
fn a_gradient_with_two_producers_is_not_folded() {
    let text = r#"
input = [1, 1, 4]

[[layers]]
type = "Flatten"

[[layers]]
type = "Dense"
name = "hidden"
units = 6
activation = "relu"

[[layers]]
type = "Dense"
name = "left"
units = 5
inputs = ["hidden"]

[[layers]]
type = "Dense"
name = "right"
units = 5
activation = "relu"
inputs = ["hidden"]

[[layers]]
type = "Add"
inputs = ["left", "right"]

[[layers]]
type = "Dense"
units = 3
activation = "softmax"
"#;
    let spec = gdl_gpu::models::toml_file::parse(text, "two_consumers.toml").unwrap();
    let g = spec.build_for(3).unwrap();
    let p = lower(&g, &ParamLayout::new(&g), 4, Mode::Train).unwrap();
    let act_backward = p
        .insts
        .iter()
        .filter(|i| matches!(i, Inst::ActBackward { .. }))
        .count();
    let folded = p
        .insts
        .iter()
        .filter(|i| {
            matches!(
                i,
                Inst::Gemm {
                    epilogue: Epilogue::ReluGrad,
                    ..
                }
            )
        })
        .count();
    // "hidden": two producers, kept; "right": fed by the Add's gradient,
    // which no GEMM writes, kept too.
    assert_eq!((act_backward, folded), (2, 0), "{:?}", kinds(&p));
}
