//! Where each instruction of a program comes from: the layer whose rule
//! emitted it and the part of the step it belongs to, recorded at lowering
//! time (`Lowering::emit`) so that a profile can name every row.

use super::model::NodeId;

/// The part of a step an instruction belongs to, in program order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// The forward walk, in node order.
    Forward,
    /// The head: softmax with the cross-entropy (or the probabilities) and
    /// the running metrics.
    Loss,
    /// The backward walk, in reverse node order.
    Backward,
    /// The Adam update over every parameter.
    Optimizer,
}

impl Phase {
    /// "forward", "loss", "backward" or "optimizer".
    pub fn name(self) -> &'static str {
        match self {
            Phase::Forward => "forward",
            Phase::Loss => "loss",
            Phase::Backward => "backward",
            Phase::Optimizer => "optimizer",
        }
    }
}

/// The layer (none for the optimizer, which spans them all) and phase of
/// one instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The layer, or none for the optimizer.
    pub node: Option<NodeId>,
    /// The part of the step.
    pub phase: Phase,
}
