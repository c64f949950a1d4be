//! `gdl-gpu summary`: a model's layers, output shapes and parameter counts,
//! and the GPU memory the executor plans for a training step.

use clap::Args;
use gdl_gpu::graph::lower::lower;
use gdl_gpu::graph::model::human_bytes;
use gdl_gpu::graph::params::ParamLayout;
use gdl_gpu::graph::plan::Plan;
use gdl_gpu::graph::program::Mode;
use gdl_gpu::models;

use super::{parse_model, parse_positive};

#[derive(Debug, Clone, Args)]
pub struct SummaryArgs {
    /// Model: a built-in (mlp, conv, cnn) or a model file (.toml, or Keras's model.to_json() .json)
    #[arg(long, value_name = "NAME|PATH", value_parser = parse_model)]
    pub model: String,
    /// Batch size the memory plan is made for
    #[arg(long, default_value = "32", value_name = "N", value_parser = parse_positive,
          allow_negative_numbers = true)]
    pub batch_size: usize,
}

pub fn run(args: &SummaryArgs) -> anyhow::Result<()> {
    let graph = models::load_graph(&args.model)?;
    print!("{}", graph.summary());
    let layout = ParamLayout::new(&graph);
    let program = lower(&graph, &layout, args.batch_size, Mode::Train)?;
    let plan = Plan::new(&program);
    // Parameters, gradients, Adam's m and v share one packed layout.
    let state = 4 * layout.trainable_len + layout.state_len;
    let temps = plan.temp_bytes() as usize;
    let unplanned: usize = program
        .tensors
        .iter()
        .filter(|t| t.home == gdl_gpu::graph::program::Home::Temp)
        .map(|t| t.len * 4)
        .sum();
    println!(
        " Planned GPU memory (batch {}): {} = parameters, gradients and Adam state {} + activations {} in {} shared buffers (unshared: {})",
        args.batch_size,
        human_bytes(4 * state + temps),
        human_bytes(4 * state),
        human_bytes(temps),
        plan.slot_bytes.len(),
        human_bytes(unplanned)
    );
    println!(
        " Training step: {} kernel instructions",
        program.insts.len()
    );
    Ok(())
}
