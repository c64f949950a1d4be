//! `gdl-gpu summary`: a model's layers, output shapes and parameter counts.

use clap::Args;

use super::ModelKind;

#[derive(Debug, Clone, Args)]
pub struct SummaryArgs {
    /// Model to describe
    #[arg(long, value_enum)]
    pub model: ModelKind,
}

pub fn run(_args: &SummaryArgs) -> anyhow::Result<()> {
    Err(super::not_implemented("summary"))
}
