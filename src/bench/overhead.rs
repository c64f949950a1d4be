//! Fixed costs that bound small kernels and small batches: a dispatch inside
//! a pass, a submit waited on, and a 16-byte readback (how training reads
//! its metrics).

use std::time::Instant;

use super::{measure, reps, Measurement, Work};
use crate::gpu::timing::{Clock, Timing};
use crate::gpu::{Gpu, Result};
use crate::kernels::elementwise::{self, ActKind};

/// Dispatches per timed pass: enough that the pass's own begin/end cost
/// is small beside them.
const DISPATCHES: usize = 100;
/// Round trips per sample: a single one is short enough for timer noise.
const TRIPS: usize = 10;

/// Median over repeats (after warm-up) of `f`'s wall-clock time.
fn wall_clock(quick: bool, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let (warmup, n) = reps(quick);
    for _ in 0..warmup.max(1) {
        f()?;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f()?;
        samples.push(t.elapsed().as_secs_f64());
    }
    Ok(Timing {
        samples,
        clock: Clock::WallClock,
    }
    .median())
}

/// Dispatch, submit and readback latencies, in µs per operation.
pub fn run(gpu: &Gpu, quick: bool) -> Result<Vec<Measurement>> {
    // The smallest real kernel: LeakyReLU of 4 values, one workgroup.
    let n = 4;
    let x = gpu.storage("bench tiny x", (n * 4) as u64)?;
    let y = gpu.storage("bench tiny y", (n * 4) as u64)?;
    let d = elementwise::forward(gpu, ActKind::LeakyRelu(0.2), &x, &y, n)?;
    let mut out = vec![measure(
        gpu,
        "dispatch_overhead",
        &format!("{DISPATCHES} tiny dispatches, one pass"),
        &vec![&d; DISPATCHES],
        Work::Latency {
            ops: DISPATCHES as f64,
            unit: "µs/dispatch",
        },
        quick,
    )?];

    let seconds = wall_clock(quick, || gpu.run("bench submit", &[&d]))?;
    out.push(Measurement {
        kernel: "submit_overhead".into(),
        shape: "1 tiny dispatch, submit + wait".into(),
        seconds,
        work: Work::Latency {
            ops: 1.0,
            unit: "µs/submit",
        },
        clock: Clock::WallClock,
    });

    let seconds = wall_clock(quick, || {
        for _ in 0..TRIPS {
            gpu.read::<u32>(&y, 4)?;
        }
        Ok(())
    })?;
    out.push(Measurement {
        kernel: "readback_overhead".into(),
        shape: format!("16 bytes, x{TRIPS}"),
        seconds,
        work: Work::Latency {
            ops: TRIPS as f64,
            unit: "µs/readback",
        },
        clock: Clock::WallClock,
    });
    Ok(out)
}
