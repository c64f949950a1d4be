//! `gdl-gpu profile`: the time of every instruction of a training step, on
//! synthetic CIFAR-shaped data (no dataset needed).

use clap::Args;
use gdl_gpu::models;
use gdl_gpu::profile::{self, ProfileConfig, WARMUP_STEPS};

use super::{open_for, parse_model, parse_positive, BackendKind};

#[derive(Debug, Clone, Args)]
pub struct ProfileArgs {
    /// Model: a built-in (mlp, conv, cnn) or a model file (.toml, or Keras's model.to_json() .json)
    #[arg(long, value_name = "NAME|PATH", value_parser = parse_model)]
    pub model: String,
    /// Examples per step
    #[arg(long, default_value = "32", value_name = "N", value_parser = parse_positive,
          allow_negative_numbers = true)]
    pub batch_size: usize,
    /// Timed steps (after warm-up): each instruction's time is its median over these
    #[arg(long, default_value = "20", value_name = "N", value_parser = parse_positive,
          allow_negative_numbers = true)]
    pub steps: usize,
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
    /// Print one JSON document (rows and totals) instead of the table
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &ProfileArgs) -> anyhow::Result<()> {
    let graph = models::load_graph(&args.model)?;
    let cfg = ProfileConfig {
        batch: args.batch_size,
        steps: args.steps,
        warmup: WARMUP_STEPS,
    };
    let gpu = open_for(args.backend, args.adapter.as_deref())?;
    let p = match &gpu {
        Some(gpu) => {
            let tune = gdl_gpu::tune::Policy::from_env(gdl_gpu::tune::Policy::Cached)?;
            profile::gpu::profile_tuned(gpu, &graph, &cfg, tune)?
        }
        None => profile::cpu::profile(&graph, &cfg)?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&p.json())?);
    } else {
        print!("{}", p.text());
    }
    Ok(())
}
