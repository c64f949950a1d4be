//! The command line: one file per subcommand, each with its argument
//! struct and `run`. Flags are validated here, by clap's value parsers, so
//! bad input is a usage error (exit code 2) before any work starts.

pub mod bench;
pub mod eval;
pub mod info;
pub mod predict;
pub mod profile;
pub mod summary;
pub mod train;
pub mod tune;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use gdl_gpu::gpu::adapter::{self, AdapterChoice};
use gdl_gpu::gpu::GpuError;

#[derive(Debug, Parser)]
#[command(
    name = "gdl-gpu",
    version,
    about = "GPU-first deep learning on wgpu: train the CIFAR-10 models of Generative Deep \
             Learning, chapter 2, on any GPU"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a model on CIFAR-10
    Train(train::TrainArgs),
    /// Evaluate a model on the CIFAR-10 test set
    Eval(eval::EvalArgs),
    /// Print a model's layers, output shapes and parameter counts
    Summary(summary::SummaryArgs),
    /// Predict classes of test images (or of one image) with a checkpoint
    Predict(predict::PredictArgs),
    /// Benchmark every kernel on an adapter
    Bench(bench::BenchArgs),
    /// Time every instruction of a training step, layer by layer
    Profile(profile::ProfileArgs),
    /// Time every GEMM configuration at a model's shapes on an adapter and cache the fastest
    Tune(tune::TuneArgs),
    /// List GPU adapters, their limits and features, and the one gdl-gpu picks
    Info(info::InfoArgs),
}

impl Cli {
    /// Checks across flags that clap's attributes cannot express (a flag
    /// against another's value); an error here is a usage error (exit 2).
    pub fn validate(&self) -> Result<(), clap::Error> {
        let (backend, adapter) = match &self.command {
            Command::Train(a) => (a.backend, &a.adapter),
            Command::Eval(a) => (a.backend, &a.adapter),
            Command::Predict(a) => (a.backend, &a.adapter),
            Command::Profile(a) => (a.backend, &a.adapter),
            _ => return Ok(()),
        };
        if backend == BackendKind::Cpu && adapter.is_some() {
            return Err(Cli::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                "--adapter chooses a GPU adapter, but --backend cpu uses none: pass one or the other",
            ));
        }
        Ok(())
    }
}

/// Where the training ops run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// The GPU on a hardware adapter (or the one --adapter names); the CPU
    /// reference when the best adapter is a software one (lavapipe, llvmpipe,
    /// SwiftShader, WARP) or there is none
    #[default]
    Auto,
    /// WGSL kernels on the chosen adapter, software adapters included
    Gpu,
    /// The plain-Rust reference implementations
    Cpu,
}

/// An integer ≥ 1 (batch size, epochs, steps).
pub fn parse_positive(s: &str) -> Result<usize, String> {
    // Parsed wide so "-3" is reported as too small, not as not-a-number.
    let n: i128 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    if n < 1 {
        return Err("must be at least 1".into());
    }
    usize::try_from(n).map_err(|_| format!("{n} is too large"))
}

/// `--model NAME|PATH`: a built-in's name or a model file's path (read
/// later, so its errors can name the file and line).
pub fn parse_model(s: &str) -> Result<String, String> {
    let names = gdl_gpu::models::builtin_names();
    let ext = std::path::Path::new(s)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("");
    if names.contains(&s) || matches!(ext, "toml" | "json") {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "expected a built-in model ({}) or a model file ending in .toml, or .json as Keras's model.to_json() writes it",
            names.join(", ")
        ))
    }
}

/// A learning rate: a finite number > 0.
pub fn parse_learning_rate(s: &str) -> Result<f32, String> {
    let x: f32 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if !x.is_finite() || x <= 0.0 {
        return Err("must be a finite number greater than 0".into());
    }
    Ok(x)
}

pub fn run(cli: &Cli) -> anyhow::Result<()> {
    // A bad GDL_GPU_TUNE fails before any work, whatever the command.
    gdl_gpu::tune::Policy::from_env(gdl_gpu::tune::Policy::Cached)?;
    let threads = match &cli.command {
        Command::Train(a) => a.threads,
        Command::Eval(a) => a.threads,
        Command::Predict(a) => a.threads,
        Command::Profile(a) => a.threads,
        _ => None,
    };
    gdl_gpu::par::set_threads(threads.unwrap_or(0));
    match &cli.command {
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Summary(a) => summary::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Profile(a) => profile::run(a),
        Command::Tune(a) => tune::run(a),
        Command::Info(a) => info::run(a),
    }
}

/// Opens the adapter named on the command line (or chosen by the environment).
pub(crate) fn open_gpu(adapter: Option<&str>) -> anyhow::Result<gdl_gpu::Gpu> {
    let opts = gdl_gpu::gpu::GpuOptions {
        adapter: gdl_gpu::gpu::AdapterChoice::from_name(adapter),
        ..Default::default()
    };
    Ok(gdl_gpu::Gpu::with_options(&opts)?)
}

/// What `--backend auto` runs on.
pub(crate) enum AutoChoice {
    /// The GPU backend on this adapter.
    Gpu(wgpu::Adapter),
    /// The CPU backend, and why (a clause for one line).
    Cpu(String),
}

/// `--backend auto`'s choice, shared by the commands that run a model and
/// by `info`. An adapter asked for by name (`--adapter`,
/// `WGPU_ADAPTER_NAME`) is used whatever it is: naming it is asking for it.
pub(crate) fn auto_choice(name: Option<&str>) -> anyhow::Result<AutoChoice> {
    let choice = AdapterChoice::from_name(name);
    match adapter::select(&choice) {
        Ok(a) if choice.names_adapter() || !adapter::is_software(&a.get_info()) => {
            Ok(AutoChoice::Gpu(a))
        }
        Ok(a) => Ok(AutoChoice::Cpu(format!(
            "the best adapter, {}, is a software one (a GPU emulated on the CPU), where the CPU backend is faster",
            a.get_info().name
        ))),
        Err(GpuError::NoAdapter { backends }) => {
            Ok(AutoChoice::Cpu(format!("there is no GPU adapter{backends}")))
        }
        Err(e) => Err(e.into()),
    }
}

/// The GPU when `kind` asks for it (kept by the caller: the GPU backend
/// borrows it). `auto` choosing the CPU says so on stderr, in one line, so
/// stdout (`--json`) stays clean.
pub(crate) fn open_for(
    kind: BackendKind,
    adapter: Option<&str>,
) -> anyhow::Result<Option<gdl_gpu::Gpu>> {
    match kind {
        BackendKind::Gpu => Ok(Some(open_gpu(adapter)?)),
        BackendKind::Cpu => Ok(None),
        BackendKind::Auto => match auto_choice(adapter)? {
            AutoChoice::Gpu(a) => Ok(Some(gdl_gpu::Gpu::open(a)?)),
            AutoChoice::Cpu(why) => {
                eprintln!("note: running on the CPU backend: {why}; pass --backend gpu to use the GPU anyway");
                Ok(None)
            }
        },
    }
}

/// The backend on `gpu` (GPU, its kernel configurations by `tune` unless
/// `GDL_GPU_TUNE=off`) or the CPU reference when `gpu` is None.
#[allow(clippy::too_many_arguments)]
pub(crate) fn make_backend<'a>(
    gpu: Option<&'a gdl_gpu::Gpu>,
    graph: &gdl_gpu::graph::Graph,
    train: &'a gdl_gpu::data::Split,
    test: &'a gdl_gpu::data::Split,
    adam: gdl_gpu::kernels::adam::AdamConfig,
    seed: u64,
    init: &gdl_gpu::train::ModelValues,
    tune: gdl_gpu::tune::Policy,
) -> anyhow::Result<Box<dyn gdl_gpu::train::Backend + 'a>> {
    use gdl_gpu::train::{cpu::CpuBackend, gpu::GpuBackend};
    Ok(match gpu {
        Some(gpu) => {
            let tuner = gdl_gpu::tune::Tuner::new(gpu, gdl_gpu::tune::Policy::from_env(tune)?);
            Box::new(GpuBackend::new(gpu, graph, train, test, adam, seed, init)?.with_tuner(tuner))
        }
        None => Box::new(CpuBackend::new(graph, train, test, adam, seed, init)?),
    })
}

/// The model of a checkpoint (the model file it carries), checked against
/// an explicit --model.
pub(crate) fn checkpoint_model(
    path: &std::path::Path,
    flag: Option<&str>,
) -> anyhow::Result<(gdl_gpu::train::CheckpointInfo, gdl_gpu::graph::Graph)> {
    let info = gdl_gpu::train::checkpoint::peek(path)?;
    let graph = info.graph(path)?;
    if let Some(m) = flag {
        let asked = gdl_gpu::models::load_graph(m)?;
        if asked.name != info.model {
            anyhow::bail!(
                "--model {m} (model {:?}) contradicts the checkpoint {}, which holds model {:?}",
                asked.name,
                path.display(),
                info.model
            );
        }
    }
    Ok((info, graph))
}

/// A one-image split (training data the evaluation-only backends never read).
pub(crate) fn first_image(split: &gdl_gpu::data::Split) -> gdl_gpu::data::Split {
    gdl_gpu::data::Split {
        pixels: split.image(0).to_vec(),
        labels: vec![split.labels[0]],
        len: 1,
    }
}
