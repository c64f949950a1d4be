//! Fuzzing the checkpoint reader: mutations of a valid checkpoint (most of
//! them in the JSON header, where the parsing is) and arbitrary bytes must
//! load or fail with a typed error that names the file, never panic.

use gdl_gpu::graph::params::ParamLayout;
use gdl_gpu::models;
use gdl_gpu::train::checkpoint::{self, Checkpoint};
use gdl_gpu::train::ModelValues;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

#[derive(Clone, Debug)]
enum Edit {
    Truncate(usize),
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
}

fn apply(mut b: Vec<u8>, edits: &[Edit], header: usize) -> Vec<u8> {
    for e in edits {
        let n = b.len().max(1);
        // Three in four edits land in the 8-byte length and the JSON header.
        let pos = |p: usize| if p % 4 == 0 { p % n } else { p % header.min(n) };
        match e {
            Edit::Truncate(p) => b.truncate(pos(*p)),
            Edit::Set(p, v) => {
                let i = pos(*p);
                if i < b.len() {
                    b[i] = *v;
                }
            }
            Edit::Insert(p, bytes) => {
                let i = pos(*p).min(b.len());
                b.splice(i..i, bytes.iter().copied());
            }
            Edit::Delete(p, k) => {
                let i = pos(*p).min(b.len());
                let j = (i + k % 16).min(b.len());
                b.drain(i..j);
            }
        }
    }
    b
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(p, v)| Edit::Set(p, v)),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(p, v)| Edit::Insert(p, v)),
        (any::<usize>(), any::<usize>()).prop_map(|(p, k)| Edit::Delete(p, k)),
    ]
}

#[test]
fn checkpoint_reader_never_panics() {
    let graph = models::builtin_graph("conv").unwrap();
    let layout = ParamLayout::new(&graph);
    let (trainable, state) = layout.initial_values(1);
    let n = layout.trainable_len;
    let ck = Checkpoint {
        model: "conv".into(),
        epoch: 2,
        epoch_step: 0,
        seed: 1,
        lr: 5e-4,
        batch: 32,
        values: ModelValues {
            trainable,
            state,
            adam_m: vec![0.5; n],
            adam_v: vec![0.25; n],
            step: 10,
        },
    };
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.safetensors");
    checkpoint::save(&good, &graph, &ck).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let header = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let path = dir.path().join("fuzzed.safetensors");

    let runner = || {
        TestRunner::new_with_rng(
            Config {
                cases: 1500,
                failure_persistence: None,
                ..Config::default()
            },
            TestRng::deterministic_rng(RngAlgorithm::ChaCha),
        )
    };
    let (ok, err) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
    runner()
        .run(&proptest::collection::vec(edit(), 1..4), |edits| {
            std::fs::write(&path, apply(bytes.clone(), &edits, header)).unwrap();
            match checkpoint::load(&path, &graph) {
                Ok(_) => ok.set(ok.get() + 1),
                Err(e) => {
                    assert!(
                        e.to_string().contains("fuzzed.safetensors"),
                        "error does not name the file: {e}"
                    );
                    err.set(err.get() + 1);
                }
            }
            Ok(())
        })
        .unwrap();
    runner()
        .run(&proptest::collection::vec(any::<u8>(), 0..512), |junk| {
            std::fs::write(&path, &junk).unwrap();
            let e = checkpoint::load(&path, &graph).expect_err("junk is not a checkpoint");
            assert!(e.to_string().contains("fuzzed.safetensors"), "{e}");
            err.set(err.get() + 1);
            Ok(())
        })
        .unwrap();
    let (ok, err) = (ok.get(), err.get());
    eprintln!(
        "fuzz_checkpoint: {} inputs ({ok} loaded, {err} typed errors), no panic",
        ok + err
    );
    assert!(err > 0);
}
