//! Checkpoints through the library: safetensors round trip, clear errors on
//! wrong, truncated or foreign files, bit-exact resume on the GPU backend
//! (at an epoch boundary and mid-epoch), NaN and stop handling in `fit`.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use gdl_gpu::data::Split;
use gdl_gpu::graph::params::ParamLayout;
use gdl_gpu::graph::Graph;
use gdl_gpu::kernels::adam::AdamConfig;
use gdl_gpu::models;
use gdl_gpu::train::checkpoint::{self, Checkpoint, CheckpointError};
use gdl_gpu::train::cpu::CpuBackend;
use gdl_gpu::train::gpu::GpuBackend;
use gdl_gpu::train::{fit, Backend, FitConfig, FitError, ModelValues};
use gdl_gpu::util::Rng;
use gdl_gpu::Gpu;

fn gpu() -> &'static Gpu {
    static GPU: std::sync::OnceLock<Gpu> = std::sync::OnceLock::new();
    GPU.get_or_init(|| Gpu::new().unwrap_or_else(|e| panic!("resume tests need an adapter: {e}")))
}

fn synthetic(n: usize, seed: u64) -> Split {
    let mut rng = Rng::new(seed);
    Split {
        pixels: (0..n * 3072).map(|_| rng.below(256) as u8).collect(),
        labels: (0..n).map(|_| rng.below(10) as u8).collect(),
        len: n,
    }
}

fn initial(graph: &Graph, seed: u64) -> ModelValues {
    ModelValues::initial(&ParamLayout::new(graph), seed)
}

/// Random values in every slot (padding stays zero, as the layout keeps it).
fn random_values(graph: &Graph, seed: u64) -> ModelValues {
    let layout = ParamLayout::new(graph);
    let mut rng = Rng::new(seed);
    let mut v = initial(graph, seed);
    for e in &layout.entries {
        let r = e.offset..e.offset + e.spec.len();
        let dst = if e.spec.trainable {
            &mut v.trainable
        } else {
            &mut v.state
        };
        for x in &mut dst[r.clone()] {
            *x = rng.normal();
        }
        if e.spec.trainable {
            for x in &mut v.adam_m[r.clone()] {
                *x = rng.normal();
            }
            for x in &mut v.adam_v[r] {
                *x = rng.next_f32();
            }
        }
    }
    v.step = 1234;
    v
}

fn ckpt(kind: &str, values: ModelValues) -> Checkpoint {
    Checkpoint {
        model: kind.into(),
        epoch: 3,
        epoch_step: 7,
        seed: 99,
        lr: 1e-3,
        batch: 16,
        values,
    }
}

fn graph(kind: &str) -> Graph {
    models::builtin_graph(kind).unwrap()
}

#[test]
fn round_trip_is_exact_for_every_model() {
    let dir = tempfile::tempdir().unwrap();
    for kind in ["mlp", "conv", "cnn"] {
        let g = graph(kind);
        let ck = ckpt(kind, random_values(&g, 5));
        let path = dir.path().join(format!("{kind}.safetensors"));
        checkpoint::save(&path, &g, &ck).unwrap();
        assert_eq!(checkpoint::load(&path, &g).unwrap(), ck);
        let info = checkpoint::peek(&path).unwrap();
        assert_eq!(
            (
                info.model,
                info.epoch,
                info.epoch_step,
                info.seed,
                info.adam_step
            ),
            (kind.to_owned(), 3, 7, 99, 1234)
        );
        // Nothing but the checkpoint is left in the folder.
        assert!(!dir.path().join(format!("{kind}.safetensors.tmp")).exists());
    }
}

/// The file is plain safetensors: Keras names, unpadded shapes, metadata.
#[test]
fn file_holds_keras_names_and_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let g = graph("cnn");
    let ck = ckpt("cnn", random_values(&g, 1));
    let path = dir.path().join("c.safetensors");
    checkpoint::save(&path, &g, &ck).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let shape = |n: &str| st.tensor(n).unwrap().shape().to_vec();
    assert_eq!(shape("conv2d/kernel"), [3, 3, 3, 32]);
    assert_eq!(shape("optimizer/m/conv2d/kernel"), [3, 3, 3, 32]);
    assert_eq!(shape("optimizer/v/dense_1/bias"), [10]);
    assert_eq!(shape("batch_normalization/moving_mean"), [32]);
    assert_eq!(shape("batch_normalization_4/moving_variance"), [128]);
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert_eq!(meta["model"], "cnn");
    assert_eq!(meta["batch_size"], "16");
    // A value read back through the raw file equals the packed one.
    let layout = ParamLayout::new(&g);
    let e = layout
        .entries
        .iter()
        .find(|e| e.name == "dense/bias")
        .unwrap();
    let raw = st.tensor("dense/bias").unwrap();
    let first = f32::from_le_bytes(raw.data()[..4].try_into().unwrap());
    assert_eq!(first, ck.values.trainable[e.offset]);
}

fn load_err(path: &std::path::Path, g: &Graph) -> CheckpointError {
    let e = checkpoint::load(path, g).expect_err("must fail");
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    e
}

#[test]
fn another_models_checkpoint_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mlp = graph("mlp");
    let path = dir.path().join("mlp.safetensors");
    checkpoint::save(&path, &mlp, &ckpt("mlp", random_values(&mlp, 2))).unwrap();
    let e = load_err(&path, &graph("cnn"));
    assert!(matches!(e, CheckpointError::ModelMismatch { .. }), "{e}");
    assert!(e.to_string().contains("\"mlp\""), "{e}");
}

/// The checkpoint carries its model: a model file's checkpoint builds its
/// graph from the metadata alone; a checkpoint written before models were
/// files (no `model_file`) is the built-in of its name.
#[test]
fn checkpoint_carries_its_model() {
    let dir = tempfile::tempdir().unwrap();
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/models/examples/residual.toml"
    );
    let g = models::load_graph(example).unwrap();
    let path = dir.path().join("r.safetensors");
    let ck = ckpt("residual", random_values(&g, 4));
    checkpoint::save(&path, &g, &ck).unwrap();
    let info = checkpoint::peek(&path).unwrap();
    let again = info.graph(&path).unwrap();
    let names = |g: &Graph| g.nodes.iter().map(|n| n.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&again), names(&g));
    assert_eq!(checkpoint::load(&path, &again).unwrap(), ck);

    let cnn = graph("cnn");
    let old = dir.path().join("old.safetensors");
    checkpoint::save(&old, &cnn, &ckpt("cnn", random_values(&cnn, 5))).unwrap();
    let bytes = std::fs::read(&old).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut map = meta.metadata().clone().unwrap();
    assert!(map.remove("model_file").is_some());
    let tensors: Vec<(String, safetensors::tensor::TensorView<'_>)> = st.tensors();
    std::fs::write(&old, safetensors::serialize(tensors, Some(map)).unwrap()).unwrap();
    let info = checkpoint::peek(&old).unwrap();
    assert_eq!(info.model, "cnn");
    let g = info.graph(&old).unwrap();
    assert_eq!(g.param_counts(), cnn.param_counts());
    checkpoint::load(&old, &g).unwrap();
}

/// A file claiming the right model whose tensors differ: named, with shapes.
#[test]
fn wrong_or_missing_tensors_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let g = graph("mlp");
    let path = dir.path().join("ok.safetensors");
    checkpoint::save(&path, &g, &ckpt("mlp", random_values(&g, 3))).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta: HashMap<String, String> = meta.metadata().clone().unwrap();
    let tensors = st.tensors();

    // dense/bias stored with shape [2, 100] instead of [200].
    let reshaped: Vec<_> = tensors
        .iter()
        .map(|(n, t)| {
            let shape = if n == "dense/bias" {
                vec![2, 100]
            } else {
                t.shape().to_vec()
            };
            let v = safetensors::tensor::TensorView::new(t.dtype(), shape, t.data()).unwrap();
            (n.clone(), v)
        })
        .collect();
    let bad = dir.path().join("reshaped.safetensors");
    std::fs::write(
        &bad,
        safetensors::serialize(reshaped, Some(meta.clone())).unwrap(),
    )
    .unwrap();
    let e = load_err(&bad, &g);
    let msg = e.to_string();
    assert!(
        msg.contains("dense/bias") && msg.contains("[2, 100]") && msg.contains("[200]"),
        "{msg}"
    );

    // optimizer/v/dense_2/kernel left out.
    let fewer: Vec<_> = tensors
        .iter()
        .filter(|(n, _)| n != "optimizer/v/dense_2/kernel")
        .map(|(n, t)| (n.clone(), t.clone()))
        .collect();
    let bad = dir.path().join("fewer.safetensors");
    std::fs::write(&bad, safetensors::serialize(fewer, Some(meta)).unwrap()).unwrap();
    let msg = load_err(&bad, &g).to_string();
    assert!(
        msg.contains("optimizer/v/dense_2/kernel") && msg.contains("missing"),
        "{msg}"
    );
}

#[test]
fn truncated_and_foreign_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let g = graph("mlp");
    let path = dir.path().join("ok.safetensors");
    checkpoint::save(&path, &g, &ckpt("mlp", random_values(&g, 4))).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "half.safetensors",
            bytes[..bytes.len() / 2].to_vec(),
            "truncated",
        ),
        ("header-cut.safetensors", bytes[..100].to_vec(), "truncated"),
        ("tiny.safetensors", b"abc".to_vec(), "shorter than"),
        (
            "text.safetensors",
            b"this is a text file, not a checkpoint at all\n".to_vec(),
            "not safetensors",
        ),
        ("empty.safetensors", Vec::new(), "0 bytes"),
    ];
    for (name, content, says) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        let e = load_err(&p, &g);
        assert!(matches!(e, CheckpointError::Format { .. }), "{name}: {e}");
        assert!(e.to_string().contains(says), "{name}: {e}");
        assert!(checkpoint::peek(&p).is_err(), "{name}");
    }
    // Valid safetensors without our metadata.
    let p = dir.path().join("foreign.safetensors");
    let data = [0u8; 16];
    let t = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![4], &data).unwrap();
    std::fs::write(&p, safetensors::serialize([("w", t)], None).unwrap()).unwrap();
    let e = load_err(&p, &g);
    assert!(
        matches!(e, CheckpointError::Metadata { key: "format", .. }),
        "{e}"
    );
    let e = load_err(&dir.path().join("absent.safetensors"), &g);
    assert!(matches!(e, CheckpointError::Io { .. }), "{e}");
}

#[test]
fn unwritable_paths_are_caught_early() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    // A folder cannot be made under a file.
    assert!(checkpoint::check_writable(&file.join("sub/c.safetensors")).is_err());
    assert!(checkpoint::check_writable(dir.path()).is_err());
    let ok = dir.path().join("new/dir/c.safetensors");
    checkpoint::check_writable(&ok).unwrap();
    assert!(ok.parent().unwrap().is_dir() && !ok.exists());
}

fn cfg(epochs: usize, first_epoch: usize, first_step: usize) -> FitConfig {
    FitConfig {
        epochs,
        batch: 8,
        seed: 11,
        steps_per_epoch: Some(4),
        progress: false,
        progress_lines: None,
        first_epoch,
        first_step,
        stop: None,
    }
}

fn adam() -> AdamConfig {
    AdamConfig {
        lr: 1e-3,
        ..AdamConfig::default()
    }
}

/// Two epochs straight, against one epoch + checkpoint file + resume; and
/// against a run stopped mid-epoch, saved and resumed. All bit-exact.
/// The CNN has BatchNorm statistics and dropout (seeded by step).
#[test]
fn resume_is_bit_exact_on_gpu() {
    let kind = "cnn";
    let g = graph(kind);
    let (train, test) = (synthetic(40, 1), synthetic(8, 2));
    let init = initial(&g, 7);
    let dir = tempfile::tempdir().unwrap();
    let noop = |_: &mut dyn Backend, _: &gdl_gpu::train::EpochReport| Ok(());

    let mut a = GpuBackend::new(gpu(), &g, &train, &test, adam(), 11, &init).unwrap();
    fit(&mut a, train.len, &cfg(2, 0, 0), noop).unwrap();
    let straight = a.values().unwrap();
    assert_eq!(straight.step, 8);

    // Epoch boundary, through a file.
    let path = dir.path().join("e1.safetensors");
    let mut b = GpuBackend::new(gpu(), &g, &train, &test, adam(), 11, &init).unwrap();
    fit(
        &mut b,
        train.len,
        &cfg(1, 0, 0),
        |be: &mut dyn Backend, r| {
            let ck = Checkpoint {
                model: kind.into(),
                epoch: r.epoch,
                epoch_step: 0,
                seed: 11,
                lr: 1e-3,
                batch: 8,
                values: be.values()?,
            };
            Ok(checkpoint::save(&path, &g, &ck)?)
        },
    )
    .unwrap();
    drop(b);
    let ck = checkpoint::load(&path, &g).unwrap();
    assert_eq!(ck.epoch, 1);
    let mut c = GpuBackend::new(gpu(), &g, &train, &test, adam(), 11, &ck.values).unwrap();
    fit(&mut c, train.len, &cfg(2, ck.epoch, 0), noop).unwrap();
    assert!(
        c.values().unwrap() == straight,
        "resumed at the epoch boundary differs"
    );

    // Mid-epoch: a stop flag already set stops after the first step of
    // epoch 2 (0-based 1) when resuming from the epoch-1 checkpoint.
    let mut d = GpuBackend::new(gpu(), &g, &train, &test, adam(), 11, &ck.values).unwrap();
    let mut stopping = cfg(2, 1, 0);
    stopping.stop = Some(Arc::new(AtomicBool::new(true)));
    let e = fit(&mut d, train.len, &stopping, noop).unwrap_err();
    assert!(
        matches!(
            e,
            FitError::Interrupted {
                epoch: 1,
                steps_done: 1
            }
        ),
        "{e}"
    );
    let mid = d.values().unwrap();
    assert_eq!(mid.step, 5);
    let mut e2 = GpuBackend::new(gpu(), &g, &train, &test, adam(), 11, &mid).unwrap();
    fit(&mut e2, train.len, &cfg(2, 1, 1), noop).unwrap();
    assert!(
        e2.values().unwrap() == straight,
        "resumed mid-epoch differs"
    );
}

/// A NaN weight makes the loss NaN: `fit` names the epoch and step.
#[test]
fn non_finite_loss_stops_with_epoch_and_step() {
    let g = graph("mlp");
    let (train, test) = (synthetic(24, 3), synthetic(4, 4));
    let mut init = initial(&g, 1);
    let layout = ParamLayout::new(&g);
    let e = layout
        .entries
        .iter()
        .find(|e| e.name == "dense_2/bias")
        .unwrap();
    init.trainable[e.offset] = f32::NAN;
    let mut b = CpuBackend::new(&g, &train, &test, adam(), 0, &init).unwrap();
    let mut saved = 0;
    let err = fit(&mut b, train.len, &cfg(2, 0, 0), |_, _| {
        saved += 1;
        Ok(())
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            FitError::NonFinite {
                epoch: 1,
                step: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("epoch 1"), "{err}");
    assert_eq!(saved, 0, "no checkpoint after a NaN");
}
