//! Training throughput: whole training steps (forward, backward, Adam, one
//! command buffer each) of every model at batch 32 on synthetic images,
//! through the same `GpuBackend` that `gdl-gpu train` uses.

use std::time::Instant;

use super::{reps, Measurement, Work};
use crate::data::Split;
use crate::gpu::timing::{Clock, Timing};
use crate::gpu::Gpu;
use crate::graph::params::ParamLayout;
use crate::graph::{Graph, GraphError};
use crate::kernels::adam::AdamConfig;
use crate::models;
use crate::train::gpu::GpuBackend;
use crate::train::{Backend, ModelValues};
use crate::tune::Tuner;
use crate::util::Rng;

/// Examples per training step benchmarked.
pub const BATCH: usize = 32;

/// Training steps per timed run: the CNN's step takes 0.1–0.3 s on
/// lavapipe, so the quick suite keeps to a handful.
pub fn steps_per_run(quick: bool) -> usize {
    if quick {
        3
    } else {
        10
    }
}

/// `len` random images with labels 0..9 in turn.
pub fn synthetic(len: usize, seed: u64) -> Split {
    let mut rng = Rng::new(seed);
    Split {
        pixels: (0..len * crate::data::cifar10::IMAGE_BYTES)
            .map(|_| rng.below(256) as u8)
            .collect(),
        labels: (0..len).map(|i| (i % 10) as u8).collect(),
        len,
    }
}

/// Median seconds of `steps` training steps of `graph` (waited for by a
/// metrics readback, as the training loop does at progress updates).
pub fn measure_model(gpu: &Gpu, graph: &Graph, quick: bool) -> Result<Measurement, GraphError> {
    let steps = steps_per_run(quick);
    // One batch per step of a run, so a run reads as many images as it trains.
    let train = synthetic(steps * BATCH, 1);
    let test = synthetic(BATCH, 2);
    let layout = ParamLayout::new(graph);
    let init = ModelValues::initial(&layout, 0);
    // The configurations `train` would run once tuned: the cache's winners.
    let mut backend = GpuBackend::new(gpu, graph, &train, &test, AdamConfig::default(), 0, &init)?
        .with_tuner(Tuner::new(gpu, super::gemm::cache_policy()));
    backend.set_permutation(&(0..train.len as u32).collect::<Vec<_>>())?;
    let mut run = |n: usize| -> Result<(), GraphError> {
        for s in 0..n {
            backend.train_step(s * BATCH, BATCH)?;
        }
        backend.metrics()?;
        Ok(())
    };
    // The first step builds the program and its pipelines: warm-up.
    let (warmup, n) = reps(quick);
    run(1)?;
    for _ in 1..warmup {
        run(steps)?;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        run(steps)?;
        samples.push(t.elapsed().as_secs_f64());
    }
    Ok(Measurement {
        kernel: "train_step".into(),
        shape: format!("{} batch={BATCH}, {steps} steps", graph.name),
        seconds: Timing {
            samples,
            clock: Clock::WallClock,
        }
        .median(),
        work: Work::Images((steps * BATCH) as f64),
        clock: Clock::WallClock,
    })
}

/// Every model of the chapter, smallest first.
pub fn run(gpu: &Gpu, quick: bool) -> Result<Vec<Measurement>, GraphError> {
    let graphs: Vec<Graph> = models::builtin_names()
        .into_iter()
        .map(|name| models::builtin_graph(name).expect("a built-in"))
        .collect();
    run_graphs(gpu, &graphs, quick)
}

/// Training throughput of each of `graphs`.
pub fn run_graphs(
    gpu: &Gpu,
    graphs: &[Graph],
    quick: bool,
) -> Result<Vec<Measurement>, GraphError> {
    graphs
        .iter()
        .map(|g| measure_model(gpu, g, quick))
        .collect()
}
