//! The training loop, like Keras's `fit`: reshuffle each epoch, step through
//! the batches (the last one partial), show running loss and accuracy, then
//! evaluate on the test set.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use super::backend::{Backend, Metrics};
use crate::graph::GraphError;
use crate::util::Rng;

/// Steps between progress updates: each update waits for the GPU and reads
/// 16 bytes back, so it must not happen every step.
pub const PROGRESS_EVERY: usize = 50;

#[derive(Clone, Debug)]
pub struct FitConfig {
    pub epochs: usize,
    pub batch: usize,
    pub seed: u64,
    /// Stop each epoch after this many steps (for quick runs).
    pub steps_per_epoch: Option<usize>,
    pub progress: bool,
    /// The first epoch to run (for resuming), 0-based.
    pub first_epoch: usize,
}

#[derive(Clone, Debug)]
pub struct EpochReport {
    /// 1-based, as Keras prints it.
    pub epoch: usize,
    pub train: Metrics,
    pub test: Metrics,
    /// Seconds of training steps (evaluation excluded).
    pub train_seconds: f64,
    pub eval_seconds: f64,
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

pub fn fit(
    backend: &mut dyn Backend,
    n_train: usize,
    cfg: &FitConfig,
    mut on_epoch: impl FnMut(&EpochReport) -> Result<(), GraphError>,
) -> Result<Vec<EpochReport>, GraphError> {
    let mut reports = Vec::new();
    let full_steps = n_train.div_ceil(cfg.batch);
    let steps = cfg
        .steps_per_epoch
        .map_or(full_steps, |s| s.min(full_steps));
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
        let mut examples = 0;
        for s in 0..steps {
            let start = s * cfg.batch;
            let len = cfg.batch.min(n_train - start);
            backend.train_step(start, len)?;
            examples += len;
            if cfg.progress && ((s + 1) % PROGRESS_EVERY == 0 || s + 1 == steps) {
                let m = backend.metrics()?;
                bar.set_message(format!(
                    "loss: {:.4} - accuracy: {:.4}",
                    m.loss(),
                    m.accuracy()
                ));
                bar.set_position(s as u64 + 1);
            }
        }
        let train = backend.metrics()?;
        let train_seconds = t0.elapsed().as_secs_f64();
        bar.finish_and_clear();
        if !train.loss_sum.is_finite() {
            return Err(GraphError::Invalid {
                layer: "loss".into(),
                message: format!(
                    "training loss became {} in epoch {}",
                    train.loss_sum,
                    epoch + 1
                ),
            });
        }
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
        on_epoch(&report)?;
        reports.push(report);
    }
    Ok(reports)
}
