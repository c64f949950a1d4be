//! Fuzzing the model-file readers: damaged copies of real model files
//! (ours in TOML, Keras's JSON) and valid files with every number replaced
//! by an extreme one must build or fail with a `ModelError` naming the file,
//! never panic. Seeded, so a failure reproduces; each property prints how
//! many inputs it ran.

use std::cell::Cell;

use gdl_gpu::models::{keras_json, toml_file, ModelSpec};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/{path}")).unwrap()
}

fn runner(seed: u8, cases: u32) -> TestRunner {
    TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
    )
}

/// Parses and builds `text`; an error must name the file.
fn check(text: &str, json: bool) {
    let file = if json { "fuzz.json" } else { "fuzz.toml" };
    let spec: Result<ModelSpec, _> = if json {
        keras_json::parse(text, file)
    } else {
        toml_file::parse(text, file)
    };
    if let Err(e) = spec.and_then(|s| s.build()) {
        assert!(e.to_string().contains(file), "{e}");
    }
}

/// Byte edits: flips, deletions, insertions of syntax characters, truncation.
fn mutated(base: &'static str) -> impl Strategy<Value = String> {
    let len = base.len();
    let edit = (
        0..len,
        0u8..4,
        prop::sample::select(b"[]{}\",=:-0123456789.e\n x".to_vec()),
    );
    (prop::collection::vec(edit, 1..8), 0..=len).prop_map(move |(edits, cut)| {
        let mut b = base.as_bytes().to_vec();
        for (at, kind, c) in edits {
            let at = at.min(b.len().saturating_sub(1));
            match kind {
                0 if !b.is_empty() => b[at] = c,
                1 if !b.is_empty() => {
                    b.remove(at);
                }
                2 => b.insert(at, c),
                _ => b.truncate(cut.max(1)),
            }
        }
        String::from_utf8_lossy(&b).into_owned()
    })
}

#[test]
fn damaged_model_files_never_panic() {
    let sources: [(&str, bool); 4] = [
        ("assets/models/examples/residual.toml", false),
        ("assets/models/cnn.toml", false),
        ("tests/fixtures/keras/residual.json", true),
        ("tests/fixtures/keras/mlp_sequential.json", true),
    ];
    for (i, (path, json)) in sources.into_iter().enumerate() {
        let base: &'static str = Box::leak(read(path).into_boxed_str());
        let ran = Cell::new(0u32);
        runner(i as u8 + 1, 1500)
            .run(&mutated(base), |text| {
                ran.set(ran.get() + 1);
                check(&text, json);
                Ok(())
            })
            .unwrap();
        eprintln!("{path}: {} damaged copies", ran.get());
    }
}

/// Every number of a Keras JSON file replaced, one at a time or all at
/// once, by one of the values that break arithmetic.
#[test]
fn extreme_numbers_never_panic() {
    let base: Value = serde_json::from_str(&read("tests/fixtures/keras/residual.json")).unwrap();
    fn numbers(v: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        match v {
            Value::Number(_) => out.push(path.clone()),
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    path.push(i.to_string());
                    numbers(x, path, out);
                    path.pop();
                }
            }
            Value::Object(o) => {
                for (k, x) in o {
                    path.push(k.clone());
                    numbers(x, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut paths = Vec::new();
    numbers(&base, &mut Vec::new(), &mut paths);
    let extremes: Vec<Value> = [
        "0",
        "-1",
        "1",
        "2147483648",
        "4294967295",
        "4294967296",
        "18446744073709551615",
        "1e300",
        "-1e300",
        "0.5",
        "1.0000001",
    ]
    .iter()
    .map(|s| serde_json::from_str(s).unwrap())
    .collect();
    let set = |v: &mut Value, path: &[String], x: &Value| {
        let mut at = v;
        for k in path {
            at = match at {
                Value::Array(a) => &mut a[k.parse::<usize>().unwrap()],
                Value::Object(o) => o.get_mut(k).unwrap(),
                _ => unreachable!(),
            };
        }
        *at = x.clone();
    };
    let mut ran = 0;
    for path in &paths {
        for x in &extremes {
            let mut v = base.clone();
            set(&mut v, path, x);
            check(&v.to_string(), true);
            ran += 1;
        }
    }
    for x in &extremes {
        let mut v = base.clone();
        for path in &paths {
            set(&mut v, path, x);
        }
        check(&v.to_string(), true);
        ran += 1;
    }
    eprintln!("residual.json: {ran} files with extreme numbers");
    assert!(ran > 100);
}
