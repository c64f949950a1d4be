//! `gdl-gpu train`: train a model on CIFAR-10.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use gdl_gpu::data::Cifar10;
use gdl_gpu::graph::params::ParamLayout;
use gdl_gpu::kernels::adam::AdamConfig;
use gdl_gpu::models::{self, ModelOptions};
use gdl_gpu::train::cpu::CpuBackend;
use gdl_gpu::train::gpu::GpuBackend;
use gdl_gpu::train::{fit, Backend, EpochReport, FitConfig, ModelValues};

use super::{open_gpu, parse_learning_rate, parse_positive, BackendKind, ModelKind};

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
    /// Run folder for metrics (default: runs/<model>-<unix time>)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Stop each epoch after N steps (for short runs)
    #[arg(long, value_name = "N", value_parser = parse_positive, allow_negative_numbers = true)]
    pub steps_per_epoch: Option<usize>,
}

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let graph = models::build(args.model, &ModelOptions::default())?;
    // The run folder is made before any work, so an unwritable path fails
    // now rather than after the first epoch.
    let out = args.out.clone().unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        PathBuf::from("runs").join(format!("{}-{t}", args.model.name()))
    });
    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create run folder {}", out.display()))?;
    let metrics_path = out.join("metrics.jsonl");
    let mut metrics_file = std::fs::File::create(&metrics_path)
        .with_context(|| format!("cannot write {}", metrics_path.display()))?;

    let data = Cifar10::load_or_download(args.data.as_deref())?;
    let layout = ParamLayout::new(&graph);
    let (trainable, state) = layout.initial_values(args.seed);
    let init = ModelValues {
        trainable,
        state,
        adam_m: vec![0.0; layout.trainable_len],
        adam_v: vec![0.0; layout.trainable_len],
        step: 0,
    };
    let adam = AdamConfig {
        lr: args.lr,
        ..AdamConfig::default()
    };
    let cfg = FitConfig {
        epochs: args.epochs,
        batch: args.batch_size,
        seed: args.seed,
        steps_per_epoch: args.steps_per_epoch,
        progress: !args.json && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        first_epoch: 0,
    };

    let gpu;
    let mut backend: Box<dyn Backend> = match args.backend {
        BackendKind::Gpu => {
            gpu = open_gpu(args.adapter.as_deref())?;
            Box::new(GpuBackend::new(
                &gpu,
                &graph,
                &data.train,
                &data.test,
                adam,
                args.seed,
                &init,
            )?)
        }
        BackendKind::Cpu => Box::new(CpuBackend::new(
            &graph,
            &data.train,
            &data.test,
            adam,
            args.seed,
            &init,
        )?),
    };
    let device = backend.describe();
    if !args.json {
        println!(
            "training {} ({} parameters) on {device}: {} epochs, batch {}, Adam lr {}, seed {}",
            args.model.name(),
            layout.entries.iter().map(|e| e.spec.len()).sum::<usize>(),
            args.epochs,
            args.batch_size,
            args.lr,
            args.seed
        );
    }
    let plot_path = out.join("training.png");
    let mut history: Vec<EpochReport> = Vec::new();
    let reports = fit(backend.as_mut(), data.train.len, &cfg, |r: &EpochReport| {
        history.push(r.clone());
        if let Err(e) = gdl_gpu::train::write_training_plot(&plot_path, &history) {
            eprintln!("warning: cannot draw {}: {e}", plot_path.display());
        }
        let line = serde_json::json!({
            "model": args.model.name(),
            "device": device,
            "epoch": r.epoch,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "seed": args.seed,
            "train_loss": r.train.loss(),
            "train_accuracy": r.train.accuracy(),
            "test_loss": r.test.loss(),
            "test_accuracy": r.test.accuracy(),
            "seconds": r.train_seconds,
            "eval_seconds": r.eval_seconds,
            "images_per_sec": r.images_per_sec,
        });
        // A metrics line that cannot be written is reported, not fatal to the run.
        if let Err(e) = writeln!(metrics_file, "{line}") {
            eprintln!("warning: cannot write {}: {e}", metrics_path.display());
        }
        if args.json {
            println!("{line}");
        } else {
            println!(
                "Epoch {}/{}: loss {:.4} - accuracy {:.4} - test_loss {:.4} - test_accuracy {:.4} - {:.1} s ({:.0} images/s)",
                r.epoch,
                args.epochs,
                r.train.loss(),
                r.train.accuracy(),
                r.test.loss(),
                r.test.accuracy(),
                r.train_seconds,
                r.images_per_sec
            );
        }
        Ok(())
    })?;
    if let (Some(last), false) = (reports.last(), args.json) {
        println!(
            "test: loss {:.4} - accuracy {:.4} ({} images); metrics in {}",
            last.test.loss(),
            last.test.accuracy(),
            last.test.examples,
            metrics_path.display()
        );
    }
    Ok(())
}
