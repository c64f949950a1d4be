//! A device lost mid-training (here destroyed on purpose, as a driver reset
//! or an unplugged GPU would lose it): the run stops with a typed error that
//! says so, and the checkpoint of the last finished epoch is intact.

use gdl_gpu::data::Split;
use gdl_gpu::graph::params::ParamLayout;
use gdl_gpu::graph::GraphError;
use gdl_gpu::kernels::adam::AdamConfig;
use gdl_gpu::train::checkpoint::{self, Checkpoint};
use gdl_gpu::train::gpu::GpuBackend;
use gdl_gpu::train::{fit, Backend, FitConfig, FitError, ModelValues};
use gdl_gpu::util::Rng;
use gdl_gpu::{Gpu, GpuError};

fn synthetic(n: usize, seed: u64) -> Split {
    let mut rng = Rng::new(seed);
    Split {
        pixels: (0..n * 3072).map(|_| rng.below(256) as u8).collect(),
        labels: (0..n).map(|_| rng.below(10) as u8).collect(),
        len: n,
    }
}

#[test]
fn lost_device_is_a_typed_error_and_keeps_the_checkpoint() {
    // A device of its own: nothing else in this process uses it.
    let gpu = Gpu::new().expect("an adapter");
    let graph = gdl_gpu::models::builtin_graph("mlp").unwrap();
    let (train, test) = (synthetic(32, 1), synthetic(8, 2));
    let init = ModelValues::initial(&ParamLayout::new(&graph), 3);
    let mut backend =
        GpuBackend::new(&gpu, &graph, &train, &test, AdamConfig::default(), 3, &init).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("last.safetensors");
    let mut saved = None;
    let cfg = FitConfig {
        steps_per_epoch: Some(2),
        ..FitConfig::new(3, 8, 3)
    };
    let result = fit(&mut backend, train.len, &cfg, |b: &mut dyn Backend, r| {
        let ck = Checkpoint {
            model: graph.name.clone(),
            epoch: r.epoch,
            epoch_step: 0,
            seed: 3,
            lr: 5e-4,
            batch: 8,
            values: b.values()?,
        };
        checkpoint::save(&path, &graph, &ck)?;
        saved = Some(ck);
        // The device goes away after the first epoch's checkpoint.
        gpu.device.destroy();
        Ok(())
    });
    let e = match result {
        Err(FitError::Graph(GraphError::Gpu(e))) => e,
        other => panic!("expected a GPU error, got {other:?}"),
    };
    assert!(matches!(e, GpuError::DeviceLost { .. }), "{e:?}");
    assert!(e.to_string().contains("device lost"), "{e}");
    let ck = saved.expect("the first epoch finished");
    assert_eq!(ck.epoch, 1);
    assert_eq!(checkpoint::load(&path, &graph).unwrap(), ck);
}
