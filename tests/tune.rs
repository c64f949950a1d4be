//! Autotuning: a winner among several candidates, the cache file (round
//! trip, a corrupt file, a foreign file, a foreign entry, GDL_GPU_TUNE=off)
//! through the binary with the cache in a temporary folder, and a tuned
//! training step against the built-in one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gdl_gpu::data::cifar10::{BATCHES_DIR, CLASS_NAMES, META_FILE, TEST_FILE, TRAIN_FILES};
use gdl_gpu::data::Split;
use gdl_gpu::graph::params::ParamLayout;
use gdl_gpu::kernels::adam::AdamConfig;
use gdl_gpu::kernels::conv::{ConvMethod, ConvPass};
use gdl_gpu::kernels::gemm::{self, GemmConfig, GemmShape};
use gdl_gpu::train::gpu::GpuBackend;
use gdl_gpu::train::{Backend, ModelValues};
use gdl_gpu::tune::{
    conv::tune_case as conv_tune_case, gemm::tune_case, GemmCase, Outcome, Policy, Tuner,
};
use gdl_gpu::util::{compare, Rng};
use gdl_gpu::Gpu;

fn gpu() -> &'static Gpu {
    static GPU: std::sync::OnceLock<Gpu> = std::sync::OnceLock::new();
    GPU.get_or_init(|| Gpu::new().unwrap_or_else(|e| panic!("tune tests need an adapter: {e}")))
}

/// A dense model small enough to tune in a second or two: its GEMMs are
/// the MLP's kinds (bias, transposes, accumulation) at a tenth the work.
const TINY: &str = r#"name = "tiny"
input = [32, 32, 3]

[[layers]]
type = "Flatten"

[[layers]]
type = "Dense"
units = 12
activation = "relu"

[[layers]]
type = "Dense"
units = 10
activation = "softmax"
"#;

/// The binary with its tune cache in `cache` (never the user's).
fn gdl(cache: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gdl-gpu"));
    c.env("GDL_GPU_TUNE_CACHE", cache)
        .env_remove("GDL_GPU_TUNE");
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(args).output().expect("run gdl-gpu")
}

fn ok(out: Output, what: &str) -> (String, String) {
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{what}:\n{o}\n{e}");
    (o, e)
}

fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

/// The one tune file in `dir`.
fn tune_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Every trial of `case` ran correctly, and the winner's time is positive
/// and no slower than any timed one (a trial cut short was slower).
fn assert_winner_is_fastest<'a>(
    case: &str,
    trials: impl Iterator<Item = (String, &'a Outcome)>,
    winner_s: f64,
) {
    let mut fastest = f64::INFINITY;
    for (label, outcome) in trials {
        match *outcome {
            Outcome::Timed(s) => fastest = fastest.min(s),
            Outcome::Abandoned(s) => assert!(s > winner_s, "{case}: {label}: {outcome:?}"),
            _ => panic!("{case}: {label} was not run correctly: {outcome:?}"),
        }
    }
    assert!(
        winner_s > 0.0 && winner_s <= fastest,
        "{case}: {winner_s} vs {fastest}"
    );
}

/// Several shapes (bias, each transpose, accumulation, a K that is not a
/// multiple of 4, so the subgroup kernel packs): every candidate is
/// correct, and the winner is a candidate no slower than any timed one.
#[test]
fn a_winner_among_the_candidates() {
    let gpu = gpu();
    let cases = [
        GemmCase::new(GemmShape::new(64, 40, 36, false, false), true, false),
        GemmCase::new(GemmShape::new(72, 24, 34, true, false), false, true),
        GemmCase::new(GemmShape::new(48, 64, 20, false, true), false, false),
    ];
    for case in cases {
        let candidates = gemm::candidates(gpu, case.shape);
        if candidates.len() < 2 {
            println!(
                "skipped {}: {} runs only one GEMM configuration",
                case.describe(),
                gpu.name()
            );
            continue;
        }
        let labels: Vec<String> = candidates.iter().map(GemmConfig::label).collect();
        for (i, l) in labels.iter().enumerate() {
            assert!(!labels[..i].contains(l), "label {l} twice: {labels:?}");
        }
        let r = tune_case(gpu, case).unwrap();
        assert_eq!(r.builtin, GemmConfig::default_for(gpu, case.shape));
        assert_eq!(r.trials.len(), candidates.len());
        assert!(candidates.contains(&r.winner), "{r:?}");
        let trials = r.trials.iter().map(|t| (t.config.label(), &t.outcome));
        assert_winner_is_fastest(&case.describe(), trials, r.winner_s);
        assert!(r.winner_s <= r.builtin_s, "{r:?}");
        println!(
            "{}: {} of {} candidates, {:.1} µs (built-in {} {:.1} µs)",
            case.describe(),
            r.winner.label(),
            r.trials.len(),
            r.winner_s * 1e6,
            r.builtin.label(),
            r.builtin_s * 1e6
        );
    }
}

/// `gdl-gpu tune` writes one file whose entries are what it printed; a
/// corrupt file and one written for another version are each ignored
/// with one warning and rewritten.
#[test]
fn tune_writes_the_cache_and_rewrites_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let model = dir.path().join("tiny.toml");
    std::fs::write(&model, TINY).unwrap();
    let args = [
        "tune",
        "--model",
        model.to_str().unwrap(),
        "--batch-size",
        "8",
        "--json",
    ];
    let (out, err) = ok(gdl(&cache, &[], &args), "tune");
    assert!(lines_with(&err, "warning").is_empty(), "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let shapes = doc["shapes"].as_array().unwrap();
    // Training at 8 (50,000 is a multiple: no partial batch), evaluation
    // at 250: three GEMMs of the training step have their own shape.
    assert!(shapes.len() >= 5, "{out}");
    let file = tune_file(&cache);
    assert_eq!(doc["cache"], file.display().to_string());
    let check = |what: &str| {
        let f = read_json(&file);
        assert_eq!(f["format"], 1, "{what}");
        assert_eq!(f["adapter"]["version"], env!("CARGO_PKG_VERSION"), "{what}");
        assert_eq!(f["adapter"]["name"], gpu().info.name, "{what}");
        let entries = f["entries"].as_object().unwrap();
        assert_eq!(entries.len(), shapes.len(), "{what}");
        for s in shapes {
            let e = &entries[s["key"].as_str().unwrap()];
            assert!(
                e["winner"].is_string() && e["winner_us"].as_f64().unwrap() > 0.0,
                "{what}: {e}"
            );
            let tried: Vec<&str> = s["trials"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["config"].as_str().unwrap())
                .collect();
            assert!(
                tried.contains(&e["winner"].as_str().unwrap()),
                "{what}: {e}"
            );
        }
    };
    check("first run");

    std::fs::write(&file, "{\"format\": 1, \"adapter\": ").unwrap();
    let (_, err) = ok(gdl(&cache, &[], &args), "tune over a corrupt file");
    assert_eq!(lines_with(&err, "warning").len(), 1, "{err}");
    assert!(err.contains("ignoring the tune cache"), "{err}");
    check("after a corrupt file");

    let mut f = read_json(&file);
    f["adapter"]["version"] = "0.0.0-elsewhere".into();
    std::fs::write(&file, serde_json::to_string(&f).unwrap()).unwrap();
    let (table, err) = ok(
        gdl(&cache, &[], &args[..args.len() - 1]),
        "tune over a foreign file",
    );
    let warnings = lines_with(&err, "warning");
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].contains("0.0.0-elsewhere"), "{err}");
    check("after a foreign file");
    // The table: a header, a rule, one row per shape.
    assert!(
        table.contains("winner") && table.contains("built-in µs"),
        "{table}"
    );
    assert_eq!(table.lines().count(), 3 + shapes.len(), "{table}");
}

/// `records` random records per training batch file, and in the test file.
fn tiny_cifar(dir: &Path, records: usize) -> String {
    let d = dir.join(BATCHES_DIR);
    std::fs::create_dir_all(&d).unwrap();
    let mut rng = Rng::new(42);
    let mut batch = || -> Vec<u8> {
        (0..records)
            .flat_map(|_| {
                let mut r = vec![rng.below(10) as u8];
                r.extend((0..3072).map(|_| rng.below(256) as u8));
                r
            })
            .collect()
    };
    for f in TRAIN_FILES {
        std::fs::write(d.join(f), batch()).unwrap();
    }
    std::fs::write(d.join(TEST_FILE), batch()).unwrap();
    std::fs::write(d.join(META_FILE), CLASS_NAMES.join("\n") + "\n\n").unwrap();
    d.display().to_string()
}

/// `train` on the GPU tunes on first use (one line), then uses the cache
/// (no line, the same losses); an entry naming a configuration this
/// adapter cannot run is dropped with a warning and tuned again; with
/// GDL_GPU_TUNE=off nothing is read or written.
#[test]
fn train_tunes_once_then_uses_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_cifar(dir.path(), 10);
    let model = dir.path().join("tiny.toml");
    std::fs::write(&model, TINY).unwrap();
    let cache = dir.path().join("cache");
    let train = |cache: &Path, env: &[(&str, &str)], run: &str| {
        let out_dir = dir.path().join(run);
        let out = gdl(
            cache,
            env,
            &[
                "train",
                "--model",
                model.to_str().unwrap(),
                "--data",
                &data,
                "--epochs",
                "1",
                "--batch-size",
                "16",
                "--backend",
                "gpu",
                "--json",
                "--out",
                out_dir.to_str().unwrap(),
            ],
        );
        let (stdout, stderr) = ok(out, run);
        let epoch: serde_json::Value =
            serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        (epoch, stderr)
    };
    let (first, err) = train(&cache, &[], "first");
    let tuning = lines_with(&err, "tuning ");
    assert_eq!(tuning.len(), 1, "{err}");
    assert!(
        tuning[0].contains("GEMM shape") && tuning[0].contains("done in"),
        "{err}"
    );
    let file = tune_file(&cache);
    assert!(tuning[0].contains(&file.display().to_string()), "{err}");

    let (second, err) = train(&cache, &[], "second");
    assert!(lines_with(&err, "tuning ").is_empty(), "{err}");
    assert!(lines_with(&err, "warning").is_empty(), "{err}");
    // The same configurations from the cache: the same arithmetic.
    for k in ["train_loss", "test_loss", "train_accuracy", "test_accuracy"] {
        assert_eq!(first[k], second[k], "{k}");
    }

    // One entry naming a configuration no adapter runs, one malformed:
    // a warning each, and both tuned again.
    let mut f = read_json(&file);
    let keys: Vec<String> = f["entries"].as_object().unwrap().keys().cloned().collect();
    let (foreign, malformed) = (&keys[0], &keys[1]);
    f["entries"][foreign]["winner"] = "regblock/wg999".into();
    f["entries"][malformed] = 42.into();
    std::fs::write(&file, serde_json::to_string(&f).unwrap()).unwrap();
    let (_, err) = train(&cache, &[], "foreign entry");
    let warnings = lines_with(&err, "warning");
    assert_eq!(warnings.len(), 2, "{err}");
    let warned =
        |key: &str, what: &str| warnings.iter().any(|w| w.contains(key) && w.contains(what));
    assert!(warned(foreign, "regblock/wg999"), "{err}");
    assert!(warned(malformed, "malformed"), "{err}");
    assert_eq!(lines_with(&err, "tuning 2 GEMM shapes ").len(), 1, "{err}");
    let entries = read_json(&file)["entries"].clone();
    for key in [foreign, malformed] {
        let winner = &entries[key]["winner"];
        assert!(
            winner.is_string() && winner != "regblock/wg999",
            "{key}: {winner}"
        );
    }

    // Off: an empty folder stays empty, a corrupt file is neither read
    // (no warning) nor rewritten.
    let off = [("GDL_GPU_TUNE", "off")];
    let empty = dir.path().join("empty");
    let (_, err) = train(&empty, &off, "off");
    assert!(
        !empty.exists(),
        "GDL_GPU_TUNE=off created {}",
        empty.display()
    );
    assert!(lines_with(&err, "tuning ").is_empty(), "{err}");
    std::fs::write(&file, "not json").unwrap();
    let (_, err) = train(&cache, &off, "off over a corrupt file");
    assert!(lines_with(&err, "warning").is_empty(), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not json");

    let out = gdl(
        &cache,
        &[("GDL_GPU_TUNE", "sometimes")],
        &["tune", "--model", "mlp"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("GDL_GPU_TUNE=\"sometimes\"") && err.contains("\"off\""),
        "{err}"
    );
}

/// Random CIFAR-shaped images: CHW u8 with labels 0..9.
fn synthetic(n: usize, seed: u64) -> Split {
    let mut rng = Rng::new(seed);
    Split {
        pixels: (0..n * 3072).map(|_| rng.below(256) as u8).collect(),
        labels: (0..n).map(|_| rng.below(10) as u8).collect(),
        len: n,
    }
}

/// A training step of the MLP with every GEMM tuned against the built-in
/// choice, from the same weights and batch. The tuned kernels
/// sum in other orders, so values agree to f32 rounding, as the GPU and
/// CPU backends do in tests/executor.rs (whose bounds these are).
#[test]
fn tuned_steps_match_the_built_in_choice() {
    let gpu = gpu();
    let graph = gdl_gpu::models::builtin_graph("mlp").unwrap();
    let (train, test) = (synthetic(64, 1), synthetic(8, 2));
    let init = ModelValues::initial(&ParamLayout::new(&graph), 7);
    let adam = AdamConfig::default();
    let cache = tempfile::tempdir().unwrap();
    let tuner = Tuner::in_dir(gpu, Policy::TuneMissing, Some(cache.path()));
    let mut tuned = GpuBackend::new(gpu, &graph, &train, &test, adam, 3, &init)
        .unwrap()
        .with_tuner(tuner);
    let mut builtin = GpuBackend::new(gpu, &graph, &train, &test, adam, 3, &init).unwrap();
    let perm: Vec<u32> = (0..64).collect();
    for b in [&mut tuned, &mut builtin] {
        b.set_permutation(&perm).unwrap();
        b.train_step(0, 32).unwrap();
    }
    let cases = gdl_gpu::train::gpu::run_cases(gpu, &graph, 32, 64, 8)
        .unwrap()
        .gemm;
    let changed = cases
        .iter()
        .filter(|c| {
            tuned.tune_table().tuned_gemm(**c) != Some(GemmConfig::default_for(gpu, c.shape))
        })
        .count();
    println!(
        "{} of {} GEMM shapes tuned to a configuration other than the built-in",
        changed,
        cases.len()
    );
    assert!(cases
        .iter()
        .all(|c| tuned.tune_table().tuned_gemm(*c).is_some()));

    assert_steps_agree(&mut tuned, &mut builtin, &adam);
}

/// One training step on `tuned` and on `builtin` from the same weights and
/// batch agree to f32 rounding: loss, correct count, the gradients (Adam's
/// first moment after one step is 0.1·g) and the updated weights, with
/// tests/executor.rs's bounds.
fn assert_steps_agree(tuned: &mut GpuBackend, builtin: &mut GpuBackend, adam: &AdamConfig) {
    let (tm, bm) = (tuned.metrics().unwrap(), builtin.metrics().unwrap());
    assert!(
        (tm.loss() - bm.loss()).abs() <= 1e-4 * bm.loss().abs().max(1.0),
        "loss {} vs {}",
        tm.loss(),
        bm.loss()
    );
    assert_eq!(tm.correct, bm.correct);
    let (tv, bv) = (tuned.values().unwrap(), builtin.values().unwrap());
    let grad = |m: &[f32]| m.iter().map(|v| v / 0.1).collect::<Vec<f32>>();
    let (tg, bg) = (grad(&tv.adam_m), grad(&bv.adam_m));
    let scale = bg.iter().fold(0f32, |a, v| a.max(v.abs())) as f64;
    compare(&tg, &bg, 1e-4 * scale, 1e-3).unwrap_or_else(|e| panic!("gradients: {e}"));
    let lr = f64::from(adam.lr);
    for i in 0..tv.trainable.len() {
        let dg = (tg[i] as f64 - bg[i] as f64).abs();
        let bound = lr * (dg / 3.16e-6).min(2.0) + 1e-7 + 1e-6 * lr;
        let diff = (tv.trainable[i] as f64 - bv.trainable[i] as f64).abs();
        assert!(
            diff <= bound,
            "parameter {i}: tuned {} vs built-in {} (diff {diff:.3e} > {bound:.3e})",
            tv.trainable[i],
            bv.trainable[i]
        );
    }
}

/// Three convolutions: the first on 3 channels (only the im2col method for
/// its forward pass and weight gradient), then a strided one and a stride-1
/// one on 8 channels (both methods for every pass where the adapter has
/// 8-lane subgroups).
const TINY_CONV: &str = r#"name = "tinyconv"
input = [32, 32, 3]

[[layers]]
type = "Conv2D"
filters = 8
kernel_size = 3
strides = 2
padding = "same"
activation = "relu"

[[layers]]
type = "Conv2D"
filters = 8
kernel_size = 3
strides = 2
padding = "same"
activation = "relu"

[[layers]]
type = "Conv2D"
filters = 12
kernel_size = 3
padding = "same"

[[layers]]
type = "Flatten"

[[layers]]
type = "Dense"
units = 10
activation = "softmax"
"#;

fn tiny_conv() -> gdl_gpu::graph::Graph {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tinyconv.toml");
    std::fs::write(&model, TINY_CONV).unwrap();
    gdl_gpu::models::load_graph(model.to_str().unwrap()).unwrap()
}

/// Every method of every convolution pass of a small model's training
/// step: each correct against the built-in one, the winner a method no
/// slower than any timed one, and both methods tried wherever the adapter
/// runs the implicit kernels.
#[test]
fn conv_methods_tuned() {
    let gpu = gpu();
    let graph = tiny_conv();
    let cases = gdl_gpu::train::gpu::run_cases(gpu, &graph, 8, 16, 8)
        .unwrap()
        .conv;
    // Forward and weight gradient of all three, input gradient of the last
    // two, at the training batch and evaluation's forward passes.
    assert!(cases.len() >= 8, "{cases:?}");
    let mut both = 0;
    for case in cases {
        let methods = ConvMethod::candidates(gpu, &case.geom, case.pass);
        let r = conv_tune_case(gpu, case, false).unwrap();
        assert_eq!(r.builtin, methods[0]);
        assert_eq!(r.trials.len(), methods.len(), "{}", case.describe());
        assert!(methods.contains(&r.winner));
        let trials = r
            .trials
            .iter()
            .map(|t| (t.method.label().into(), &t.outcome));
        assert_winner_is_fastest(&case.describe(), trials, r.winner_s);
        both += usize::from(methods.len() == 2);
        println!(
            "{}: {} ({:.1} µs; built-in {} {:.1} µs)",
            case.describe(),
            r.winner.label(),
            r.winner_s * 1e6,
            r.builtin.label(),
            r.builtin_s * 1e6
        );
    }
    if gemm::variant_available(gpu, gemm::Variant::Subgroup) {
        assert!(both >= 5, "{both} passes with two methods");
    }
}

/// A training step with each convolution pass forced, through the tune
/// cache, to each method (so the weight gradient reuses the forward pass's
/// im2col matrix, or builds its own, or reads x in place) agrees with the
/// built-in step to f32 rounding.
#[test]
fn every_conv_method_trains_like_the_built_in() {
    let gpu = gpu();
    if !gemm::variant_available(gpu, gemm::Variant::Subgroup) {
        println!("skipped: {} has one convolution method", gpu.name());
        return;
    }
    let graph = tiny_conv();
    let (train, test) = (synthetic(64, 1), synthetic(8, 2));
    let init = ModelValues::initial(&ParamLayout::new(&graph), 7);
    let adam = AdamConfig::default();
    let cache = tempfile::tempdir().unwrap();
    let perm: Vec<u32> = (0..64).collect();
    let step = |tuner: Option<Tuner>| {
        let mut b = GpuBackend::new(gpu, &graph, &train, &test, adam, 3, &init).unwrap();
        if let Some(t) = tuner {
            b = b.with_tuner(t);
        }
        b.set_permutation(&perm).unwrap();
        b.train_step(0, 32).unwrap();
        b
    };
    let mut builtin = step(None);
    // Tuning fills the cache; then its convolution entries are rewritten.
    step(Some(Tuner::in_dir(
        gpu,
        Policy::TuneMissing,
        Some(cache.path()),
    )));
    let file = tune_file(cache.path());
    let cases = gdl_gpu::train::gpu::run_cases(gpu, &graph, 32, 64, 8)
        .unwrap()
        .conv;
    let label = |implicit: bool| if implicit { "implicit" } else { "im2col" };
    for forced in 0..8u32 {
        let pick = |pass: ConvPass| {
            let bit = match pass {
                ConvPass::Forward => 1,
                ConvPass::WeightGrad => 2,
                ConvPass::InputGrad => 4,
            };
            label(forced & bit != 0)
        };
        let mut f = read_json(&file);
        for case in &cases {
            let want = pick(case.pass);
            if ConvMethod::candidates(gpu, &case.geom, case.pass)
                .iter()
                .any(|m| m.label() == want)
            {
                f["entries"][case.key()]["winner"] = want.into();
            }
        }
        std::fs::write(&file, serde_json::to_string(&f).unwrap()).unwrap();
        let mut tuned = step(Some(Tuner::in_dir(gpu, Policy::Cached, Some(cache.path()))));
        for case in &cases {
            let got = tuned.tune_table().tuned_conv(*case).map(|m| m.label());
            let runs = ConvMethod::candidates(gpu, &case.geom, case.pass);
            if runs.iter().any(|m| m.label() == pick(case.pass)) {
                assert_eq!(got, Some(pick(case.pass)), "{}", case.describe());
            }
        }
        assert_steps_agree(&mut tuned, &mut builtin, &adam);
    }
}
