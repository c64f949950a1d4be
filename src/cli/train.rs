//! `gdl-gpu train`: train a model on CIFAR-10.

use std::path::PathBuf;

use clap::Args;

use super::{parse_learning_rate, parse_positive, BackendKind, ModelKind};

#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Model to train
    #[arg(long, value_enum)]
    pub model: ModelKind,
    /// Passes over the training set
    #[arg(long, default_value = "10", value_name = "N", value_parser = parse_positive,
          allow_negative_numbers = true)]
    pub epochs: usize,
    #[arg(long, default_value = "32", value_name = "N", value_parser = parse_positive,
          allow_negative_numbers = true)]
    pub batch_size: usize,
    /// Adam learning rate
    #[arg(long, default_value = "5e-4", value_name = "F", value_parser = parse_learning_rate,
          allow_negative_numbers = true)]
    pub lr: f32,
    /// Seed of weight initialisation, shuffling and dropout
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed: u64,
    /// CIFAR-10: the archive cifar-10-binary.tar.gz or the folder cifar-10-batches-bin
    /// (default: $GDL_GPU_DATA, else the cache folder, downloading when absent)
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = BackendKind::Gpu)]
    pub backend: BackendKind,
    /// Substring of the adapter's name (see `gdl-gpu info`)
    #[arg(long, value_name = "NAME")]
    pub adapter: Option<String>,
    /// Print one JSON object per epoch instead of text
    #[arg(long)]
    pub json: bool,
    /// Run folder for metrics, checkpoints and plots
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Stop each epoch after N steps (for short runs)
    #[arg(long, value_name = "N", value_parser = parse_positive, allow_negative_numbers = true)]
    pub steps_per_epoch: Option<usize>,
}

pub fn run(_args: &TrainArgs) -> anyhow::Result<()> {
    Err(super::not_implemented("train"))
}
