//! Rewrites of a lowered program that drop instructions without changing a
//! value: the gradient through a ReLU or LeakyReLU folded into the GEMM
//! that produced the gradient it scales (the GEMM's gradient epilogue).

use super::program::{Inst, Program};
use crate::kernels::elementwise::ActKind;
use crate::kernels::gemm::Epilogue;

/// Replaces each `ActBackward { x, dy, dx }` of a ReLU or LeakyReLU whose
/// `dy` a plain GEMM wrote (no bias, no accumulation, no epilogue) and
/// nothing else touches, by that GEMM writing `dx` through the matching
/// gradient epilogue with `x` in its bias slot: the same products, scaled
/// by the same factor, in one instruction instead of two.
pub(super) fn fold_act_grads(p: &mut Program) {
    let mut i = 0;
    while i < p.insts.len() {
        if let Some(j) = foldable(p, i) {
            let Inst::ActBackward { kind, x, dx, .. } = p.insts[i] else {
                unreachable!("foldable checked the instruction")
            };
            let Inst::Gemm {
                bias, epilogue, c, ..
            } = &mut p.insts[j]
            else {
                unreachable!("foldable checked the producer")
            };
            *bias = Some(x);
            *c = dx;
            *epilogue = match kind {
                ActKind::LeakyRelu(s) => Epilogue::LeakyReluGrad(s),
                _ => Epilogue::ReluGrad,
            };
            p.insts.remove(i);
            p.origin.remove(i);
        } else {
            i += 1;
        }
    }
}

/// The index of the GEMM that instruction `i` can fold into, if any.
fn foldable(p: &Program, i: usize) -> Option<usize> {
    let Inst::ActBackward { kind, dy, dx, .. } = p.insts[i] else {
        return None;
    };
    if !matches!(kind, ActKind::Relu | ActKind::LeakyRelu(_)) {
        return None;
    }
    let touches = |t, k: usize| p.insts[k].uses().contains(&t);
    let j = (0..i).rev().find(|&k| touches(dy, k))?;
    let plain = matches!(
        p.insts[j],
        Inst::Gemm {
            c,
            bias: None,
            epilogue: Epilogue::None,
            accumulate: false,
            db: None,
            ..
        } if c == dy
    );
    // dy is read by this instruction alone, and dx (first written here) by
    // nothing in between, so writing dx at j instead changes no value.
    let alone = (j + 1..p.insts.len())
        .filter(|&k| k != i)
        .all(|k| !touches(dy, k));
    let free = (j + 1..i).all(|k| !touches(dx, k));
    (plain && alone && free && dy != p.logits).then_some(j)
}
