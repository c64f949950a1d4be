//! The training loop, like Keras's `fit`: reshuffle each epoch, step through
//! the batches (the last one partial), show running loss and accuracy, then
//! evaluate on the test set.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use thiserror::Error;

use super::backend::{Backend, Metrics};
use crate::graph::GraphError;
use crate::util::Rng;

/// Steps between progress updates and loss checks: each waits for the GPU
/// and reads 16 bytes back, so it must not happen every step.
pub const PROGRESS_EVERY: usize = 50;

/// How [`fit`] runs; build with [`FitConfig::new`].
#[derive(Clone, Debug)]
pub struct FitConfig {
    /// Total epochs of the run (the last epoch run is `epochs - 1`, 0-based).
    pub epochs: usize,
    /// Examples per step; the last step of an epoch may have fewer.
    pub batch: usize,
    /// Seeds each epoch's shuffle (see [`permutation`]).
    pub seed: u64,
    /// Stop each epoch after this many steps (for quick runs).
    pub steps_per_epoch: Option<usize>,
    /// Draw a progress bar (on a terminal).
    pub progress: bool,
    /// Without a bar (stderr not a terminal: CI, nohup), print a progress
    /// line to stderr at the first metrics check this long after the last
    /// line (or the epoch's start); None for no lines.
    pub progress_lines: Option<Duration>,
    /// The first epoch to run (for resuming), 0-based.
    pub first_epoch: usize,
    /// Steps of `first_epoch` already taken (resuming mid-epoch).
    pub first_step: usize,
    /// Set (by a Ctrl-C handler) to stop after the current step.
    pub stop: Option<Arc<AtomicBool>>,
}

impl FitConfig {
    /// `epochs` from the start in batches of `batch`, no progress display,
    /// no stop flag: set the other fields with struct update syntax.
    pub fn new(epochs: usize, batch: usize, seed: u64) -> Self {
        FitConfig {
            epochs,
            batch,
            seed,
            steps_per_epoch: None,
            progress: false,
            progress_lines: None,
            first_epoch: 0,
            first_step: 0,
            stop: None,
        }
    }
}

/// Why `fit` stopped early.
#[derive(Debug, Error)]
pub enum FitError {
    /// The backend failed (device error, bad argument).
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A checkpoint could not be written.
    #[error(transparent)]
    Checkpoint(#[from] super::checkpoint::CheckpointError),
    /// The running training loss is NaN or infinite. `step` is the step
    /// (1-based, within the epoch) after which it was seen; the checks run
    /// every `PROGRESS_EVERY` steps and at the end of each epoch.
    #[error("training loss became {loss} in epoch {epoch}, by step {step}; stopped")]
    NonFinite {
        /// The epoch, 1-based.
        epoch: usize,
        /// The step, 1-based within the epoch.
        step: usize,
        /// The running loss sum seen (NaN or ±∞).
        loss: f64,
    },
    /// Stopped by `FitConfig::stop` after `steps_done` steps of the 0-based
    /// epoch `epoch` (the state is consistent: the step finished).
    #[error("interrupted in epoch {} after step {steps_done}", epoch + 1)]
    Interrupted {
        /// The epoch, 0-based.
        epoch: usize,
        /// Steps of that epoch completed.
        steps_done: usize,
    },
}

/// What one epoch did, passed to `fit`'s callback and returned.
#[derive(Clone, Debug)]
pub struct EpochReport {
    /// 1-based, as Keras prints it.
    pub epoch: usize,
    /// Running metrics over the epoch's training steps (weights changing
    /// as they went, as Keras reports them).
    pub train: Metrics,
    /// The whole test set after the epoch, inference mode.
    pub test: Metrics,
    /// Seconds of training steps (evaluation excluded).
    pub train_seconds: f64,
    /// Seconds of the test-set evaluation.
    pub eval_seconds: f64,
    /// Training examples per second of `train_seconds`.
    pub images_per_sec: f64,
}

/// The example order of `epoch`: a pure function of the seed, so resuming
/// at an epoch boundary replays the same order.
pub fn permutation(n: usize, seed: u64, epoch: usize) -> Vec<u32> {
    let mut perm: Vec<u32> = (0..n as u32).collect();
    let mut rng = Rng::new(seed ^ (epoch as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
    rng.shuffle(&mut perm);
    perm
}

/// The interval of progress lines when stderr is not a terminal.
pub const PROGRESS_LINE_EVERY: Duration = Duration::from_secs(10);

/// One progress line: where the epoch is, the running metrics, the time
/// spent and an estimate of the time left in the epoch, from the pace of
/// the `steps_timed` steps taken in `elapsed` (fewer than `step` when the
/// epoch was resumed).
pub fn progress_line(
    epoch: usize,
    epochs: usize,
    step: usize,
    steps: usize,
    m: &Metrics,
    elapsed: Duration,
    steps_timed: usize,
) -> String {
    let secs = elapsed.as_secs_f64();
    let eta = secs / steps_timed.max(1) as f64 * (steps - step) as f64;
    format!(
        "Epoch {epoch}/{epochs}: step {step}/{steps} ({:.0}%) - loss {:.4} - accuracy {:.4} - {secs:.0} s, about {eta:.0} s left in the epoch",
        100.0 * step as f64 / steps.max(1) as f64,
        m.loss(),
        m.accuracy(),
    )
}

/// Runs epochs `cfg.first_epoch..cfg.epochs`; `on_epoch` sees the backend
/// (to save a checkpoint) and each epoch's report.
pub fn fit(
    backend: &mut dyn Backend,
    n_train: usize,
    cfg: &FitConfig,
    mut on_epoch: impl FnMut(&mut dyn Backend, &EpochReport) -> Result<(), FitError>,
) -> Result<Vec<EpochReport>, FitError> {
    let mut reports = Vec::new();
    let full_steps = n_train.div_ceil(cfg.batch);
    let steps = cfg
        .steps_per_epoch
        .map_or(full_steps, |s| s.min(full_steps));
    // Program building and kernel tuning stay out of the first epoch's time.
    if n_train > 0 && cfg.first_epoch < cfg.epochs {
        backend.prepare(cfg.batch.min(n_train))?;
    }
    for epoch in cfg.first_epoch..cfg.epochs {
        backend.set_permutation(&permutation(n_train, cfg.seed, epoch))?;
        backend.reset_metrics()?;
        let bar = if cfg.progress {
            let bar = ProgressBar::new(steps as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} {bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
                )
                .expect("static template"),
            );
            bar.set_prefix(format!("Epoch {}/{}", epoch + 1, cfg.epochs));
            bar
        } else {
            ProgressBar::hidden()
        };
        let t0 = Instant::now();
        let mut last_line = t0;
        let mut examples = 0;
        // A resumed epoch skips the steps it had taken; its training
        // metrics then cover only the remaining steps.
        let first = if epoch == cfg.first_epoch {
            cfg.first_step.min(steps)
        } else {
            0
        };
        // The metrics read at the last step are the epoch's: not read twice.
        let mut last_read = None;
        for s in first..steps {
            let start = s * cfg.batch;
            let len = cfg.batch.min(n_train - start);
            backend.train_step(start, len)?;
            examples += len;
            if (s + 1) % PROGRESS_EVERY == 0 || s + 1 == steps {
                let m = backend.metrics()?;
                if !m.loss_sum.is_finite() {
                    bar.abandon();
                    return Err(FitError::NonFinite {
                        epoch: epoch + 1,
                        step: s + 1,
                        loss: m.loss_sum,
                    });
                }
                bar.set_message(format!(
                    "loss: {:.4} - accuracy: {:.4}",
                    m.loss(),
                    m.accuracy()
                ));
                bar.set_position(s as u64 + 1);
                if let Some(every) = cfg.progress_lines {
                    if last_line.elapsed() >= every && s + 1 < steps {
                        last_line = Instant::now();
                        eprintln!(
                            "{}",
                            progress_line(
                                epoch + 1,
                                cfg.epochs,
                                s + 1,
                                steps,
                                &m,
                                t0.elapsed(),
                                s + 1 - first
                            )
                        );
                    }
                }
                if s + 1 == steps {
                    last_read = Some(m);
                }
            }
            if cfg.stop.as_ref().is_some_and(|f| f.load(Ordering::SeqCst)) && s + 1 < steps {
                bar.abandon();
                return Err(FitError::Interrupted {
                    epoch,
                    steps_done: s + 1,
                });
            }
        }
        let train = match last_read {
            Some(m) => m,
            // A resumed epoch with no steps left to take.
            None => backend.metrics()?,
        };
        let train_seconds = t0.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let t1 = Instant::now();
        let test = backend.evaluate()?;
        let report = EpochReport {
            epoch: epoch + 1,
            train,
            test,
            train_seconds,
            eval_seconds: t1.elapsed().as_secs_f64(),
            images_per_sec: examples as f64 / train_seconds,
        };
        on_epoch(&mut *backend, &report)?;
        reports.push(report);
        // A stop asked for during the last step or the evaluation lands on
        // the epoch boundary, after the epoch's checkpoint.
        if cfg.stop.as_ref().is_some_and(|f| f.load(Ordering::SeqCst)) && epoch + 1 < cfg.epochs {
            return Err(FitError::Interrupted {
                epoch: epoch + 1,
                steps_done: 0,
            });
        }
    }
    Ok(reports)
}
