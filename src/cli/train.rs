//! `gdl-gpu train`: train a model on CIFAR-10, checkpointing each epoch.
//!
//! Ctrl-C finishes the step in progress, saves a checkpoint of exactly that
//! state (the partial epoch recorded as `epoch_step`, so `--resume` carries
//! on from that step) and exits with 130. A NaN or infinite loss stops the
//! run and leaves the last good (epoch-end) checkpoint untouched.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use gdl_gpu::data::Cifar10;
use gdl_gpu::graph::params::ParamLayout;
use gdl_gpu::graph::Graph;
use gdl_gpu::kernels::adam::AdamConfig;
use gdl_gpu::models;
use gdl_gpu::train::checkpoint::{self, Checkpoint};
use gdl_gpu::train::{fit, Backend, EpochReport, FitConfig, FitError, ModelValues};

use super::{
    make_backend, open_for, parse_learning_rate, parse_model, parse_positive, BackendKind,
};

pub const DEFAULT_BATCH: usize = 32;
pub const DEFAULT_LR: f32 = 5e-4;
/// The checkpoint written into the run folder every epoch.
pub const CHECKPOINT_NAME: &str = "checkpoint.safetensors";

#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Model: a built-in (mlp, conv, cnn) or a model file (.toml, or Keras's model.to_json()
    /// .json); with --resume, taken from the checkpoint
    #[arg(long, value_name = "NAME|PATH", value_parser = parse_model, required_unless_present = "resume")]
    pub model: Option<String>,
    /// Passes over the training set (in all, counting those of a resumed checkpoint)
    #[arg(long, default_value = "10", value_name = "N", value_parser = parse_positive,
          allow_negative_numbers = true)]
    pub epochs: usize,
    /// Examples per step [default: 32]
    #[arg(long, value_name = "N", value_parser = parse_positive,
          allow_negative_numbers = true, conflicts_with = "resume")]
    pub batch_size: Option<usize>,
    /// Adam learning rate [default: 5e-4]
    #[arg(long, value_name = "F", value_parser = parse_learning_rate,
          allow_negative_numbers = true, conflicts_with = "resume")]
    pub lr: Option<f32>,
    /// Seed of weight initialisation, shuffling and dropout [default: 0]
    #[arg(long, value_name = "N", conflicts_with = "resume")]
    pub seed: Option<u64>,
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
    /// Print one JSON object per epoch instead of text
    #[arg(long)]
    pub json: bool,
    /// Run folder for metrics and checkpoint.safetensors (default: runs/<model>-<unix
    /// time>; with --resume, the checkpoint's folder)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Stop each epoch after N steps (for short runs)
    #[arg(long, value_name = "N", value_parser = parse_positive, allow_negative_numbers = true)]
    pub steps_per_epoch: Option<usize>,
    /// Also write the checkpoint here (each epoch and on Ctrl-C)
    #[arg(long, value_name = "FILE.safetensors")]
    pub save: Option<PathBuf>,
    /// Continue from this checkpoint, with its seed, learning rate and batch size
    #[arg(long, value_name = "FILE.safetensors")]
    pub resume: Option<PathBuf>,
}

/// Where and what a run saves.
struct Saver<'a> {
    paths: Vec<PathBuf>,
    graph: &'a Graph,
    seed: u64,
    lr: f32,
    batch: usize,
}

impl Saver<'_> {
    fn save(
        &self,
        backend: &mut dyn Backend,
        epoch: usize,
        epoch_step: usize,
    ) -> Result<(), FitError> {
        let ck = Checkpoint {
            model: self.graph.name.clone(),
            epoch,
            epoch_step,
            seed: self.seed,
            lr: self.lr,
            batch: self.batch,
            values: backend.values()?,
        };
        for p in &self.paths {
            checkpoint::save(p, self.graph, &ck)?;
        }
        Ok(())
    }
}

/// Seconds between progress lines off a terminal: fit's default, or (for
/// tests, which cannot wait 10 s) `GDL_GPU_PROGRESS_SECS`, undocumented.
fn progress_every() -> anyhow::Result<std::time::Duration> {
    const VAR: &str = "GDL_GPU_PROGRESS_SECS";
    match std::env::var(VAR) {
        Err(_) => Ok(gdl_gpu::train::fit::PROGRESS_LINE_EVERY),
        Ok(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
            .with_context(|| format!("{VAR}={v:?}: expected a number of seconds, 0 or more")),
    }
}

/// Where default run folders go.
const RUNS_DIR: &str = "runs";

/// A new folder `<root>/<model>-<time>`, made with `create_dir`, which
/// fails when the folder exists: two runs started in the same second
/// cannot share one, the later takes `<model>-<time>-2` (then `-3`, …).
fn new_run_folder(root: &Path, model: &str, time: u64) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(root)
        .with_context(|| format!("cannot create run folder {}", root.display()))?;
    // Bounded, so a folder that cannot be listed properly fails, not loops.
    const TRIES: u32 = 10_000;
    for k in 1..=TRIES {
        let name = match k {
            1 => format!("{model}-{time}"),
            k => format!("{model}-{time}-{k}"),
        };
        let dir = root.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot create run folder {}", dir.display()))
            }
        }
    }
    anyhow::bail!(
        "cannot create run folder {}: {model}-{time} and {TRIES} numbered variants exist",
        root.display()
    )
}

/// The run folder without --out: a resumed checkpoint's own folder, or a
/// new one under runs/ (also for a checkpoint in the current folder, which
/// is no run folder: its metrics and plot must not land in `.`).
fn default_out(model: &str, resume: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = resume.and_then(Path::parent) {
        if !dir.as_os_str().is_empty() && dir != Path::new(".") {
            return Ok(dir.to_owned());
        }
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    new_run_folder(Path::new(RUNS_DIR), model, t)
}

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    // The checkpoint to resume from is read first: it names the model.
    let (graph, resumed) = match &args.resume {
        Some(path) => {
            let (_, graph) = super::checkpoint_model(path, args.model.as_deref())?;
            let ck = checkpoint::load(path, &graph)?;
            if ck.epoch >= args.epochs {
                anyhow::bail!(
                    "{} already holds {} epoch(s); pass --epochs greater than that to train on",
                    path.display(),
                    ck.epoch
                );
            }
            (graph, Some(ck))
        }
        None => (
            models::load_graph(
                args.model
                    .as_deref()
                    .expect("clap requires --model without --resume"),
            )?,
            None,
        ),
    };
    let model = graph.name.clone();
    let layout = ParamLayout::new(&graph);
    let (seed, lr, batch) = match &resumed {
        Some(ck) => (ck.seed, ck.lr, ck.batch),
        None => (
            args.seed.unwrap_or(0),
            args.lr.unwrap_or(DEFAULT_LR),
            args.batch_size.unwrap_or(DEFAULT_BATCH),
        ),
    };

    // The adapter first: a missing driver or adapter fails before any
    // folder is made or data is read (or downloaded).
    let gpu = open_for(args.backend, args.adapter.as_deref())?;

    // Every output place is made and checked before any work, so an
    // unwritable path fails now rather than after the first epoch.
    let out = match &args.out {
        Some(o) => o.clone(),
        None => default_out(&model, args.resume.as_deref())?,
    };
    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create run folder {}", out.display()))?;
    let metrics_path = out.join("metrics.jsonl");
    let mut metrics_file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed.is_some())
        .truncate(resumed.is_none())
        .open(&metrics_path)
        .with_context(|| format!("cannot write {}", metrics_path.display()))?;
    let mut paths = vec![out.join(CHECKPOINT_NAME)];
    paths.extend(args.save.clone());
    for p in &paths {
        checkpoint::check_writable(p).context("checkpoint path is not writable")?;
    }
    let saver = Saver {
        paths,
        graph: &graph,
        seed,
        lr,
        batch,
    };

    let data = Cifar10::load_or_download(args.data.as_deref())?;
    let (init, first_epoch, first_step) = match &resumed {
        Some(ck) => (ck.values.clone(), ck.epoch, ck.epoch_step),
        None => (ModelValues::initial(&layout, seed), 0, 0),
    };
    let adam = AdamConfig {
        lr,
        ..AdamConfig::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // The first Ctrl-C asks for a clean stop; a second one quits at once.
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\ninterrupted: finishing the current step and saving a checkpoint (Ctrl-C again to quit now)");
        })
        .context("cannot install the Ctrl-C handler")?;
    }
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let cfg = FitConfig {
        epochs: args.epochs,
        batch,
        seed,
        steps_per_epoch: args.steps_per_epoch,
        progress: !args.json && terminal,
        // Off a terminal (CI, nohup) a bar draws nothing: lines instead.
        progress_lines: if terminal {
            None
        } else {
            Some(progress_every()?)
        },
        first_epoch,
        first_step,
        stop: Some(stop),
    };

    let mut backend = make_backend(
        gpu.as_ref(),
        &graph,
        &data.train,
        &data.test,
        adam,
        seed,
        &init,
        gdl_gpu::tune::Policy::TuneMissing,
    )?;
    let device = backend.describe();
    if !args.json {
        let from = match &args.resume {
            Some(p) => format!(
                " from {} (epoch {}, step {})",
                p.display(),
                first_epoch,
                first_step
            ),
            None => String::new(),
        };
        println!(
            "training {} ({} parameters) on {device}{from}: {} epochs, batch {batch}, Adam lr {lr}, seed {seed}",
            model,
            layout.entries.iter().map(|e| e.spec.len()).sum::<usize>(),
            args.epochs,
        );
        // Tests wait for this line before sending Ctrl-C.
        let _ = std::io::stdout().flush();
    }
    let plot_path = out.join("training.png");
    let mut history: Vec<EpochReport> = Vec::new();
    let result = fit(
        backend.as_mut(),
        data.train.len,
        &cfg,
        |backend: &mut dyn Backend, r: &EpochReport| {
            saver.save(backend, r.epoch, 0)?;
            history.push(r.clone());
            // A plot that cannot be drawn is reported, not fatal to the run.
            if let Err(e) = gdl_gpu::train::write_training_plot(&plot_path, &history) {
                eprintln!("warning: cannot draw {}: {e}", plot_path.display());
            }
            let line = serde_json::json!({
                "model": model,
                "device": device,
                "epoch": r.epoch,
                "epochs": args.epochs,
                "batch_size": batch,
                // Through its shortest decimal form, so 5e-4 is not printed as 0.0005000000237.
                "lr": lr.to_string().parse::<f64>().unwrap_or(f64::NAN),
                "seed": seed,
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
        },
    );
    let reports = match result {
        Ok(r) => r,
        Err(FitError::Interrupted { epoch, steps_done }) => {
            saver.save(backend.as_mut(), epoch, steps_done)?;
            let e = FitError::Interrupted { epoch, steps_done };
            return Err(anyhow::Error::new(e).context(format!(
                "checkpoint saved to {}; continue with --resume",
                saver
                    .paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" and ")
            )));
        }
        // A NaN loss, a lost device: the epoch-end checkpoint is still good.
        Err(e @ (FitError::NonFinite { .. } | FitError::Graph(_))) => {
            return Err(anyhow::Error::new(e).context(format!(
                "the last good checkpoint (end of the last finished epoch, if any) is {}",
                saver.paths[0].display()
            )));
        }
        Err(e) => return Err(e.into()),
    };
    if let (Some(last), false) = (reports.last(), args.json) {
        println!(
            "test: loss {:.4} - accuracy {:.4} ({} images); metrics in {}, checkpoint {}",
            last.test.loss(),
            last.test.accuracy(),
            last.test.examples,
            metrics_path.display(),
            saver.paths[0].display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_folders_of_one_second_are_distinct() {
        let root = tempfile::tempdir().unwrap();
        let runs = root.path().join("runs");
        let a = new_run_folder(&runs, "mlp", 1_700_000_000).unwrap();
        let b = new_run_folder(&runs, "mlp", 1_700_000_000).unwrap();
        let c = new_run_folder(&runs, "mlp", 1_700_000_000).unwrap();
        assert_eq!(a, runs.join("mlp-1700000000"));
        assert_eq!(b, runs.join("mlp-1700000000-2"));
        assert_eq!(c, runs.join("mlp-1700000000-3"));
        assert!(a.is_dir() && b.is_dir() && c.is_dir());
        // A file in the way is an error naming the path, not a loop.
        let blocked = root.path().join("file");
        std::fs::write(&blocked, b"x").unwrap();
        let e = new_run_folder(&blocked, "mlp", 1).unwrap_err();
        assert!(
            format!("{e:#}").contains("cannot create run folder"),
            "{e:#}"
        );
    }
}
