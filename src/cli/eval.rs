//! `gdl-gpu eval`: loss and accuracy of a checkpoint on the CIFAR-10 test set.

use std::path::PathBuf;

use clap::Args;
use gdl_gpu::data::Cifar10;
use gdl_gpu::kernels::adam::AdamConfig;
use gdl_gpu::train::checkpoint;

use super::{first_image, make_backend, open_for, parse_model, BackendKind};

#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// Model (default: the checkpoint's; an error if it differs): a built-in or a model file
    #[arg(long, value_name = "NAME|PATH", value_parser = parse_model)]
    pub model: Option<String>,
    /// CIFAR-10: the archive cifar-10-binary.tar.gz or the folder cifar-10-batches-bin
    /// (default: $GDL_GPU_DATA, else the cache folder, downloading when absent)
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// Where the ops run
    #[arg(long, value_enum, default_value_t = BackendKind::Auto)]
    pub backend: BackendKind,
    /// Substring of the adapter's name (see `gdl-gpu info`)
    #[arg(long, value_name = "NAME")]
    pub adapter: Option<String>,
    /// Threads of the CPU backend (default: all cores); results do not depend on it
    #[arg(long, value_name = "N", value_parser = super::parse_positive,
          allow_negative_numbers = true)]
    pub threads: Option<usize>,
    /// Weights to evaluate (written by `train`)
    #[arg(long, value_name = "FILE.safetensors")]
    pub checkpoint: PathBuf,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let (info, graph) = super::checkpoint_model(&args.checkpoint, args.model.as_deref())?;
    let ck = checkpoint::load(&args.checkpoint, &graph)?;
    // The adapter before the data: a missing driver fails before a
    // download; and only the test split is read.
    let gpu = open_for(args.backend, args.adapter.as_deref())?;
    let test = Cifar10::load_test_or_download(args.data.as_deref())?;
    let train = first_image(&test);
    let adam = AdamConfig {
        lr: ck.lr,
        ..AdamConfig::default()
    };
    let mut backend = make_backend(
        gpu.as_ref(),
        &graph,
        &train,
        &test,
        adam,
        ck.seed,
        &ck.values,
        gdl_gpu::tune::Policy::Cached,
    )?;
    let m = backend.evaluate()?;
    if args.json {
        let v = serde_json::json!({
            "checkpoint": args.checkpoint.display().to_string(),
            "model": info.model,
            "epoch": ck.epoch,
            "device": backend.describe(),
            "test_loss": m.loss(),
            "test_accuracy": m.accuracy(),
            "examples": m.examples,
        });
        println!("{v}");
    } else {
        println!(
            "{} ({}, epoch {}) on {}: test loss {:.4} - accuracy {:.4} ({} images)",
            args.checkpoint.display(),
            info.model,
            ck.epoch,
            backend.describe(),
            m.loss(),
            m.accuracy(),
            m.examples
        );
    }
    Ok(())
}
