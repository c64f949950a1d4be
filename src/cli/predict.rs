//! `gdl-gpu predict`: classes predicted by a checkpoint for test images.

use std::path::PathBuf;

use clap::Args;

use super::parse_positive;

#[derive(Debug, Clone, Args)]
pub struct PredictArgs {
    /// Trained weights
    #[arg(long, value_name = "PATH")]
    pub checkpoint: PathBuf,
    /// Number of test images to show
    #[arg(short = 'n', default_value = "10", value_name = "N", value_parser = parse_positive,
          allow_negative_numbers = true)]
    pub n: usize,
    /// Seed choosing the test images
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed: u64,
    /// Where to write the figure
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Classify this image instead of test images
    #[arg(long, value_name = "FILE")]
    pub image: Option<PathBuf>,
}

pub fn run(_args: &PredictArgs) -> anyhow::Result<()> {
    Err(super::not_implemented("predict"))
}
