//! `summary`'s planned GPU memory against what the GPU backend allocates
//! over a real epoch: every part counted, nothing counted twice.

use gdl_gpu::data::Split;
use gdl_gpu::graph::params::ParamLayout;
use gdl_gpu::kernels::adam::AdamConfig;
use gdl_gpu::train::gpu::{planned_memory, GpuBackend};
use gdl_gpu::train::{fit, FitConfig, ModelValues};
use gdl_gpu::Gpu;

fn split(len: usize) -> Split {
    Split {
        pixels: (0..len * 3072).map(|i| (i % 251) as u8).collect(),
        labels: (0..len).map(|i| (i % 10) as u8).collect(),
        len,
    }
}

#[test]
fn plan_matches_an_epochs_allocations() {
    let gpu = Gpu::new().expect("an adapter");
    for model in ["mlp", "cnn"] {
        let graph = gdl_gpu::models::load_graph(model).unwrap();
        let layout = ParamLayout::new(&graph);
        // 10 examples in batches of 4: a partial batch of 2; 7 test
        // examples: one evaluation batch of 7.
        let (train, test) = (split(10), split(7));
        let init = ModelValues::initial(&layout, 0);
        let mut b =
            GpuBackend::new(&gpu, &graph, &train, &test, AdamConfig::default(), 0, &init).unwrap();
        let cfg = FitConfig {
            epochs: 1,
            batch: 4,
            seed: 0,
            steps_per_epoch: None,
            progress: false,
            progress_lines: None,
            first_epoch: 0,
            first_step: 0,
            stop: None,
        };
        fit(&mut b, train.len, &cfg, |_, _| Ok(())).unwrap();
        let parts = planned_memory(&graph, 4, 10, 7).unwrap();
        let whats: Vec<&str> = parts.iter().map(|p| p.what.as_str()).collect();
        assert!(
            whats.iter().any(|w| w.contains("batch 4"))
                && whats.iter().any(|w| w.contains("batch 2"))
                && whats
                    .iter()
                    .any(|w| w.starts_with("evaluation") && w.contains("batch 7")),
            "{whats:?}"
        );
        let planned: u64 = parts.iter().map(|p| p.bytes).sum();
        assert_eq!(planned, b.allocated_bytes(), "{model}: {parts:?}");
        // The dataset parts are the bytes uploaded: u8 pixels as words, u32 labels.
        let train_part = parts
            .iter()
            .find(|p| p.what.starts_with("training set"))
            .unwrap();
        assert_eq!(train_part.bytes, 10 * 3072 + 48);
    }
}
