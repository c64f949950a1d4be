//! Timing of recorded work: GPU timestamp queries where the device has
//! them, wall clock around submit-and-wait otherwise.

use std::time::Instant;

use super::dispatch::Dispatch;
use super::error::Result;
use super::Gpu;

/// How a [`Timing`] was measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// GPU timestamp queries around the pass: kernel time only.
    Timestamps,
    /// Host wall clock around submit and wait: includes the submit's overhead.
    WallClock,
}

impl Clock {
    /// The clock's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Clock::Timestamps => "timestamps",
            Clock::WallClock => "wall clock",
        }
    }
}

/// Repeated timings of the same work.
#[derive(Clone, Debug)]
pub struct Timing {
    /// Seconds for each repeat, in order.
    pub samples: Vec<f64>,
    /// How they were measured.
    pub clock: Clock,
}

impl Timing {
    /// The median sample, in seconds (NaN if none).
    pub fn median(&self) -> f64 {
        let mut s = self.samples.clone();
        s.sort_by(f64::total_cmp);
        if s.is_empty() {
            return f64::NAN;
        }
        let n = s.len();
        if n % 2 == 1 {
            s[n / 2]
        } else {
            0.5 * (s[n / 2 - 1] + s[n / 2])
        }
    }

    /// The fastest sample, in seconds.
    pub fn min(&self) -> f64 {
        self.samples.iter().copied().fold(f64::INFINITY, f64::min)
    }
}

impl Gpu {
    /// Runs `dispatches` (one compute pass) `warmup` times untimed, then
    /// `reps` times, each repeat timed on its own.
    pub fn time(&self, dispatches: &[&Dispatch], warmup: usize, reps: usize) -> Result<Timing> {
        for _ in 0..warmup {
            self.run("warm-up", dispatches)?;
        }
        if self.caps.timestamps {
            self.time_with_timestamps(dispatches, reps)
        } else {
            let mut samples = Vec::with_capacity(reps);
            for _ in 0..reps {
                let t = Instant::now();
                self.run("timed", dispatches)?;
                samples.push(t.elapsed().as_secs_f64());
            }
            Ok(Timing {
                samples,
                clock: Clock::WallClock,
            })
        }
    }

    fn time_with_timestamps(&self, dispatches: &[&Dispatch], reps: usize) -> Result<Timing> {
        let count = (2 * reps) as u32;
        let queries = self.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("timing"),
            ty: wgpu::QueryType::Timestamp,
            count,
        });
        let resolved = self.buffer(
            "timestamps",
            8 * count as u64,
            wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        )?;
        for r in 0..reps as u32 {
            let mut enc = self.encoder("timed");
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("timed"),
                    timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                        query_set: &queries,
                        beginning_of_pass_write_index: Some(2 * r),
                        end_of_pass_write_index: Some(2 * r + 1),
                    }),
                });
                for d in dispatches {
                    d.record(&mut pass);
                }
            }
            self.submit("timed", enc)?;
            self.wait()?;
        }
        let mut enc = self.encoder("resolve timestamps");
        enc.resolve_query_set(&queries, 0..count, &resolved, 0);
        self.submit("resolve timestamps", enc)?;
        let ticks: Vec<u64> = self.read(&resolved, count as usize)?;
        let period_ns = self.queue.get_timestamp_period() as f64;
        let samples = ticks
            .chunks_exact(2)
            .map(|p| p[1].saturating_sub(p[0]) as f64 * period_ns * 1e-9)
            .collect();
        Ok(Timing {
            samples,
            clock: Clock::Timestamps,
        })
    }
}
