//! The benchmark suite: each kernel family at the models' real shapes (and a
//! large square GEMM), reported as GFLOP/s or GB/s with the adapter's name;
//! then the fixed costs (dispatch, submit, readback) and whole training
//! steps in images/s. `benches/kernels.rs` prints it; the CLI's `bench`
//! reuses it and writes it as a JSON report (`report`) that `compare` reads.

pub mod batchnorm;
pub mod compare;
pub mod conv;
pub mod elementwise;
pub mod gemm;
pub mod misc;
pub mod overhead;
pub mod pool;
pub mod report;
pub mod training;

use crate::gpu::timing::Clock;
use crate::gpu::{Dispatch, Gpu, Result};
use crate::graph::GraphError;

/// The work one run does, from which a rate follows.
#[derive(Clone, Copy, Debug)]
pub enum Work {
    /// Floating-point operations per run (an FMA counts as 2).
    Flops(f64),
    /// Bytes read plus bytes written per run.
    Bytes(f64),
    /// Training images per run.
    Images(f64),
    /// Operations per run of a fixed cost (a dispatch, a readback), shown
    /// as µs per operation: lower is better.
    Latency {
        /// Operations per run.
        ops: f64,
        /// The rate's unit, e.g. `µs/dispatch`.
        unit: &'static str,
    },
}

/// One benchmark result.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// Kernel (or step) name.
    pub kernel: String,
    /// Shape description.
    pub shape: String,
    /// Median seconds per run.
    pub seconds: f64,
    /// What one run does.
    pub work: Work,
    /// How the time was measured.
    pub clock: Clock,
}

impl Measurement {
    /// (value, unit): GFLOP/s for compute-bound kernels, GB/s for
    /// memory-bound ones, images/s for training, µs per operation for
    /// fixed costs.
    pub fn rate(&self) -> (f64, &'static str) {
        match self.work {
            Work::Flops(f) => (f / self.seconds * 1e-9, "GFLOP/s"),
            Work::Bytes(b) => (b / self.seconds * 1e-9, "GB/s"),
            Work::Images(n) => (n / self.seconds, "images/s"),
            Work::Latency { ops, unit } => (self.seconds / ops * 1e6, unit),
        }
    }

    /// Whether a larger `rate()` is better (false for latencies).
    pub fn higher_is_better(&self) -> bool {
        !matches!(self.work, Work::Latency { .. })
    }
}

/// Repeats for a measurement: `quick` keeps the whole suite within a minute
/// on lavapipe.
pub fn reps(quick: bool) -> (usize, usize) {
    if quick {
        (1, 3)
    } else {
        (2, 10)
    }
}

/// Times `dispatches` (one pass) and reports the median.
pub fn measure(
    gpu: &Gpu,
    kernel: &str,
    shape: &str,
    dispatches: &[&Dispatch],
    work: Work,
    quick: bool,
) -> Result<Measurement> {
    let (warmup, n) = reps(quick);
    let t = gpu.time(dispatches, warmup, n)?;
    Ok(Measurement {
        kernel: kernel.to_owned(),
        shape: shape.to_owned(),
        seconds: t.median(),
        work,
        clock: t.clock,
    })
}

/// Every kernel family's benchmarks, the fixed overheads and the models'
/// training throughput, in a fixed order.
pub fn suite(gpu: &Gpu, quick: bool) -> Result<Vec<Measurement>, GraphError> {
    suite_only(gpu, quick, &[])
}

/// The whole suite, with training rows for `models` instead of the built-ins.
pub fn suite_with_models(
    gpu: &Gpu,
    quick: bool,
    models: &[crate::graph::Graph],
) -> Result<Vec<Measurement>, GraphError> {
    let kernels: Vec<String> = FAMILIES
        .iter()
        .filter(|f| **f != "training")
        .map(|f| f.to_string())
        .collect();
    let mut rows = suite_only(gpu, quick, &kernels)?;
    rows.extend(training::run_graphs(gpu, models, quick)?);
    Ok(rows)
}

/// The benchmark families, in the suite's order.
pub const FAMILIES: [&str; 8] = [
    "elementwise",
    "misc",
    "conv",
    "pool",
    "batchnorm",
    "gemm",
    "overhead",
    "training",
];

/// The families named in `only` (elementwise, misc, conv, pool, batchnorm,
/// gemm, overhead, training), or all of them when it is empty: a kernel can be
/// measured in seconds.
pub fn suite_only(gpu: &Gpu, quick: bool, only: &[String]) -> Result<Vec<Measurement>, GraphError> {
    type Run = fn(&Gpu, bool) -> Result<Vec<Measurement>, GraphError>;
    let runs: [Run; 8] = [
        |g, q| Ok(elementwise::run(g, q)?),
        |g, q| Ok(misc::run(g, q)?),
        |g, q| Ok(conv::run(g, q)?),
        |g, q| Ok(pool::run(g, q)?),
        |g, q| Ok(batchnorm::run(g, q)?),
        |g, q| Ok(gemm::run(g, q)?),
        |g, q| Ok(overhead::run(g, q)?),
        training::run,
    ];
    let mut out = Vec::new();
    for (name, run) in FAMILIES.into_iter().zip(runs) {
        if only.is_empty() || only.iter().any(|o| o == name) {
            out.extend(run(gpu, quick)?);
        }
    }
    Ok(out)
}

/// The table printed by `cargo bench` and `gdl-gpu bench`.
pub fn format_table(gpu: &Gpu, rows: &[Measurement]) -> String {
    let mut s = format!(
        "adapter: {} | driver: {} {} | subgroups: {} | clock: {}\n",
        gpu.name(),
        gpu.info.driver,
        gpu.info.driver_info,
        gpu.caps.subgroups,
        rows.first().map(|r| r.clock.name()).unwrap_or("-")
    );
    s.push_str(&format!(
        "{:<28} {:<34} {:>12} {:>12}\n",
        "kernel", "shape", "median µs", "rate"
    ));
    let main_clock = rows.first().map(|r| r.clock);
    for r in rows {
        let (v, unit) = r.rate();
        // Host-timed rows (submit, readback, training) say so.
        let note = if Some(r.clock) == main_clock {
            String::new()
        } else {
            format!("  [{}]", r.clock.name())
        };
        s.push_str(&format!(
            "{:<28} {:<34} {:>12.1} {:>8.2} {unit}{note}\n",
            r.kernel,
            r.shape,
            r.seconds * 1e6,
            v,
        ));
    }
    s
}
