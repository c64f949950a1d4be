//! The benchmark suite: each kernel family at the models' real shapes (and a
//! large square GEMM), reported as GFLOP/s or GB/s with the adapter's name.
//! `benches/kernels.rs` prints it; the CLI's `bench` reuses it.

pub mod batchnorm;
pub mod conv;
pub mod elementwise;
pub mod gemm;
pub mod misc;

use crate::gpu::timing::Clock;
use crate::gpu::{Dispatch, Gpu, Result};

#[derive(Clone, Copy, Debug)]
pub enum Work {
    /// Floating-point operations per run (an FMA counts as 2).
    Flops(f64),
    /// Bytes read plus bytes written per run.
    Bytes(f64),
}

#[derive(Clone, Debug)]
pub struct Measurement {
    pub kernel: String,
    pub shape: String,
    /// Median seconds per run.
    pub seconds: f64,
    pub work: Work,
    pub clock: Clock,
}

impl Measurement {
    /// (value, unit): GFLOP/s for compute-bound kernels, GB/s otherwise.
    pub fn rate(&self) -> (f64, &'static str) {
        match self.work {
            Work::Flops(f) => (f / self.seconds * 1e-9, "GFLOP/s"),
            Work::Bytes(b) => (b / self.seconds * 1e-9, "GB/s"),
        }
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

/// Every kernel family's benchmarks, in a fixed order.
pub fn suite(gpu: &Gpu, quick: bool) -> Result<Vec<Measurement>> {
    suite_only(gpu, quick, &[])
}

/// The families named in `only` (elementwise, misc, conv, batchnorm, gemm),
/// or all of them when it is empty: a kernel can be measured in seconds.
pub fn suite_only(gpu: &Gpu, quick: bool, only: &[String]) -> Result<Vec<Measurement>> {
    type Run = fn(&Gpu, bool) -> Result<Vec<Measurement>>;
    let families: [(&str, Run); 5] = [
        ("elementwise", elementwise::run),
        ("misc", misc::run),
        ("conv", conv::run),
        ("batchnorm", batchnorm::run),
        ("gemm", gemm::run),
    ];
    let mut out = Vec::new();
    for (name, run) in families {
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
    for r in rows {
        let (v, unit) = r.rate();
        s.push_str(&format!(
            "{:<28} {:<34} {:>12.1} {:>8.2} {}\n",
            r.kernel,
            r.shape,
            r.seconds * 1e6,
            v,
            unit
        ));
    }
    s
}
