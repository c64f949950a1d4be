//! `gdl-gpu summary`: a model's layers, output shapes and parameter counts,
//! and the GPU memory a training run on CIFAR-10 plans, part by part.

use clap::Args;
use gdl_gpu::data::cifar10::{TEST_IMAGES, TRAIN_IMAGES};
use gdl_gpu::graph::lower::lower;
use gdl_gpu::graph::model::human_bytes;
use gdl_gpu::graph::params::ParamLayout;
use gdl_gpu::graph::program::Mode;
use gdl_gpu::models;
use gdl_gpu::train::gpu::planned_memory;

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
    let parts = planned_memory(&graph, args.batch_size, TRAIN_IMAGES, TEST_IMAGES)?;
    let total: u64 = parts.iter().map(|p| p.bytes).sum();
    println!(
        " Planned GPU memory (batch {}, CIFAR-10): {}",
        args.batch_size,
        human_bytes(total as usize)
    );
    for p in &parts {
        println!("   {:<58} {:>12}", p.what, human_bytes(p.bytes as usize));
    }
    println!(
        " Not counted: the small uniform buffers of each dispatch, and kernel scratch that depends on the adapter (batch-norm and reduction partial sums, GEMM operand packing with subgroups)"
    );
    let layout = ParamLayout::new(&graph);
    let program = lower(&graph, &layout, args.batch_size, Mode::Train)?;
    println!(
        " Training step: {} kernel instructions",
        program.insts.len()
    );
    Ok(())
}
