//! `gdl-gpu eval`: accuracy and loss of a model on the CIFAR-10 test set.

use std::path::PathBuf;

use clap::Args;

use super::{BackendKind, ModelKind};

#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// Model to evaluate
    #[arg(long, value_enum)]
    pub model: ModelKind,
    /// CIFAR-10: the archive cifar-10-binary.tar.gz or the folder cifar-10-batches-bin
    /// (default: $GDL_GPU_DATA, else the cache folder, downloading when absent)
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = BackendKind::Gpu)]
    pub backend: BackendKind,
    /// Substring of the adapter's name (see `gdl-gpu info`)
    #[arg(long, value_name = "NAME")]
    pub adapter: Option<String>,
    /// Weights to evaluate
    #[arg(long, value_name = "PATH")]
    pub checkpoint: Option<PathBuf>,
}

pub fn run(_args: &EvalArgs) -> anyhow::Result<()> {
    Err(super::not_implemented("eval"))
}
