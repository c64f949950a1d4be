//! Readbacks stall the queue, so the training loop keeps them few: one per
//! metrics check (not two at an epoch's end) and one per checkpoint (not
//! one per tensor).

use gdl_gpu::data::Split;
use gdl_gpu::graph::params::ParamLayout;
use gdl_gpu::graph::GraphError;
use gdl_gpu::kernels::adam::AdamConfig;
use gdl_gpu::train::gpu::GpuBackend;
use gdl_gpu::train::{fit, Backend, FitConfig, Metrics, ModelValues};
use gdl_gpu::Gpu;

/// Counts the metrics reads `fit` makes; each step adds one example.
#[derive(Default)]
struct Counting {
    seen: u64,
    metrics_reads: usize,
}

impl Backend for Counting {
    fn describe(&self) -> String {
        "counting".into()
    }
    fn set_permutation(&mut self, _: &[u32]) -> Result<(), GraphError> {
        Ok(())
    }
    fn train_step(&mut self, _: usize, len: usize) -> Result<(), GraphError> {
        self.seen += len as u64;
        Ok(())
    }
    fn metrics(&mut self) -> Result<Metrics, GraphError> {
        self.metrics_reads += 1;
        Ok(Metrics {
            loss_sum: self.seen as f64,
            correct: self.seen,
            examples: self.seen,
        })
    }
    fn reset_metrics(&mut self) -> Result<(), GraphError> {
        self.seen = 0;
        Ok(())
    }
    fn evaluate(&mut self) -> Result<Metrics, GraphError> {
        Ok(Metrics::default())
    }
    fn predict(&mut self) -> Result<Vec<Vec<f32>>, GraphError> {
        Ok(Vec::new())
    }
    fn values(&mut self) -> Result<ModelValues, GraphError> {
        unreachable!("not checkpointed here")
    }
    fn set_values(&mut self, _: &ModelValues) -> Result<(), GraphError> {
        Ok(())
    }
}

fn config(epochs: usize, batch: usize) -> FitConfig {
    FitConfig {
        epochs,
        batch,
        seed: 0,
        steps_per_epoch: None,
        progress: false,
        progress_lines: None,
        first_epoch: 0,
        first_step: 0,
        stop: None,
    }
}

#[test]
fn metrics_are_read_once_per_check() {
    // 120 steps an epoch: checks after steps 50 and 100, and the last
    // step's, which is also the epoch's training metrics.
    let mut b = Counting::default();
    let reports = fit(&mut b, 1200, &config(2, 10), |_, _| Ok(())).unwrap();
    assert_eq!(b.metrics_reads, 2 * 3);
    assert_eq!(reports[1].train.examples, 1200, "the whole epoch's metrics");
    // The last partial batch counts.
    let mut b = Counting::default();
    let reports = fit(&mut b, 45, &config(1, 10), |_, _| Ok(())).unwrap();
    assert_eq!(b.metrics_reads, 1);
    assert_eq!(reports[0].train.examples, 45);
    // A resumed epoch with no step left still reports its metrics.
    let mut b = Counting::default();
    let cfg = FitConfig {
        first_step: 5,
        ..config(1, 10)
    };
    let reports = fit(&mut b, 45, &cfg, |_, _| Ok(())).unwrap();
    assert_eq!(b.metrics_reads, 1);
    assert_eq!(reports[0].train.examples, 0);
}

#[test]
fn read_many_is_one_readback_of_exact_parts() {
    let gpu = Gpu::new().expect("an adapter");
    let a: Vec<f32> = (0..7).map(|i| i as f32 * 0.5).collect();
    let b: Vec<f32> = vec![-1.0, 2.5, 1e-7];
    let bufs = [
        gpu.upload_storage("a", &a).unwrap(),
        gpu.upload_storage("b", &b).unwrap(),
    ];
    let before = gpu.readbacks();
    let got: Vec<Vec<f32>> = gpu
        .read_many(&[(&bufs[0], 5), (&bufs[1], 0), (&bufs[1], 3), (&bufs[0], 7)])
        .unwrap();
    assert_eq!(gpu.readbacks(), before + 1);
    assert_eq!(got, [a[..5].to_vec(), vec![], b.clone(), a.clone()]);
    // Bytes at offsets that are not multiples of 4 in the source count.
    let bytes: Vec<u8> = (1..=9).collect();
    let buf = gpu.upload_storage("bytes", &bytes).unwrap();
    let got: Vec<Vec<u8>> = gpu.read_many(&[(&buf, 3), (&buf, 9)]).unwrap();
    assert_eq!(got, [bytes[..3].to_vec(), bytes.clone()]);
    assert_eq!(gpu.read::<u8>(&buf, 9).unwrap(), bytes);
}

#[test]
fn a_checkpoint_is_one_readback() {
    let gpu = Gpu::new().expect("an adapter");
    let graph = gdl_gpu::models::load_graph("cnn").unwrap();
    let layout = ParamLayout::new(&graph);
    let mut init = ModelValues::initial(&layout, 3);
    // Distinct Adam moments, so a mix-up of the four tensors shows.
    init.adam_m
        .iter_mut()
        .enumerate()
        .for_each(|(i, x)| *x = i as f32);
    init.adam_v
        .iter_mut()
        .enumerate()
        .for_each(|(i, x)| *x = -(i as f32));
    init.step = 7;
    let split = Split {
        pixels: vec![9; 3072],
        labels: vec![1],
        len: 1,
    };
    let mut b = GpuBackend::new(
        &gpu,
        &graph,
        &split,
        &split,
        AdamConfig::default(),
        3,
        &init,
    )
    .unwrap();
    let before = gpu.readbacks();
    let v = b.values().unwrap();
    assert_eq!(gpu.readbacks(), before + 1);
    assert_eq!(v, init);
}

#[test]
fn progress_line_reads_well() {
    use gdl_gpu::train::fit::progress_line;
    let m = Metrics {
        loss_sum: 150.0,
        correct: 40,
        examples: 100,
    };
    let secs = std::time::Duration::from_secs(20);
    assert_eq!(
        progress_line(2, 10, 250, 1000, &m, secs, 200),
        "Epoch 2/10: step 250/1000 (25%) - loss 1.5000 - accuracy 0.4000 - 20 s, about 75 s left in the epoch"
    );
}
