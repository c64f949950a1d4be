//! train --save/--resume, eval, predict and Ctrl-C through the binary, on a
//! tiny synthetic CIFAR-10 folder built in a temporary directory.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use gdl_gpu::data::cifar10::{BATCHES_DIR, CLASS_NAMES, META_FILE, TEST_FILE, TRAIN_FILES};
use gdl_gpu::util::Rng;

fn gdl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gdl-gpu"))
        // The built-in kernel choice: no tuning time, and no writes to the user's tune cache.
        .env("GDL_GPU_TUNE", "off")
        .args(args)
        .output()
        .expect("run gdl-gpu")
}

fn ok(args: &[&str]) -> String {
    let out = gdl(args);
    let (o, e) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{args:?}:\n{o}\n{e}");
    o
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
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

fn tensors(path: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut v: Vec<(String, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.data().to_vec()))
        .collect();
    v.sort();
    v
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Dark grey pixels under the images of a prediction figure: caption ink.
fn caption_ink(img: &image::RgbImage) -> usize {
    let top = (gdl_gpu::render::PAD + 32 * gdl_gpu::render::SCALE) as u32;
    img.enumerate_pixels()
        .filter(|&(_, y, p)| y >= top && p.0[0] == p.0[1] && p.0[1] == p.0[2] && p.0[0] < 96)
        .count()
}

/// One run of two epochs against one epoch then --resume, on the GPU:
/// identical weights, Adam state and moving statistics; the run folder's
/// default checkpoint exists; eval and predict read the checkpoint without
/// --model.
#[test]
fn save_resume_eval_predict() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_cifar(dir.path(), 20);
    let common = [
        "--model",
        "cnn",
        "--data",
        &data,
        "--batch-size",
        "16",
        "--seed",
        "5",
        "--backend",
        "gpu",
    ];
    let straight = dir.path().join("straight.safetensors");
    let run_a = dir.path().join("a");
    let mut args = vec![
        "train",
        "--epochs",
        "2",
        "--out",
        s(&run_a),
        "--save",
        s(&straight),
    ];
    args.extend(common);
    ok(&args);
    assert!(run_a.join("checkpoint.safetensors").is_file());

    let run_b = dir.path().join("b");
    let mut args = vec!["train", "--epochs", "1", "--out", s(&run_b)];
    args.extend(common);
    ok(&args);
    let resumed = dir.path().join("resumed.safetensors");
    let first = run_b.join("checkpoint.safetensors");
    let out = ok(&[
        "train",
        "--resume",
        s(&first),
        "--epochs",
        "2",
        "--data",
        &data,
        "--save",
        s(&resumed),
        "--backend",
        "gpu",
    ]);
    assert!(out.contains("Epoch 2/2"), "{out}");
    assert_eq!(
        std::fs::read_to_string(run_b.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        2
    );
    let (x, y) = (tensors(&straight), tensors(&resumed));
    assert_eq!(x.len(), y.len());
    for ((na, a), (nb, b)) in x.iter().zip(&y) {
        assert_eq!(na, nb);
        assert!(a == b, "{na} differs after resume");
    }

    // Resuming with a seed of its own contradicts the checkpoint: usage error.
    let out = gdl(&[
        "train",
        "--resume",
        s(&first),
        "--seed",
        "3",
        "--data",
        &data,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // The resumed run wrote its epoch-2 checkpoint over the one it started from.
    let out = gdl(&[
        "train",
        "--resume",
        s(&first),
        "--epochs",
        "2",
        "--data",
        &data,
    ]);
    assert!(
        text(&out.stderr).contains("already holds 2 epoch"),
        "{}",
        text(&out.stderr)
    );

    let out = ok(&[
        "eval",
        "--checkpoint",
        s(&straight),
        "--data",
        &data,
        "--json",
        "--backend",
        "gpu",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["model"], "cnn");
    assert!(v["device"].as_str().unwrap().starts_with("GPU: "), "{v}");
    assert_eq!(v["examples"], 20);
    assert!(v["test_loss"].as_f64().unwrap().is_finite());
    // The CPU reference agrees on accuracy.
    let out = ok(&[
        "eval",
        "--checkpoint",
        s(&straight),
        "--data",
        &data,
        "--json",
        "--backend",
        "cpu",
    ]);
    let c: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["test_accuracy"], c["test_accuracy"]);
    let out = gdl(&[
        "eval",
        "--checkpoint",
        s(&straight),
        "--data",
        &data,
        "--model",
        "mlp",
    ]);
    let e = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("contradicts") && e.contains("cnn"), "{e}");

    let fig = dir.path().join("figs/preds.png");
    let out = ok(&[
        "predict",
        "--checkpoint",
        s(&straight),
        "--data",
        &data,
        "-n",
        "6",
        "--out",
        s(&fig),
    ]);
    assert_eq!(out.lines().count(), 1 + 6 + 1, "{out}");
    let img = image::open(&fig).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), gdl_gpu::render::figure_size(6, 32));
    // White background, dark (antialiased) text under the images, some
    // image colours.
    let count = |f: &dyn Fn(&image::Rgb<u8>) -> bool| img.pixels().filter(|p| f(p)).count();
    assert!(count(&|p| p.0 == [255, 255, 255]) > img.pixels().len() / 3);
    assert!(
        caption_ink(&img) > 500,
        "{} dark caption pixels",
        caption_ink(&img)
    );
    assert!(count(&|p| p.0 != [0, 0, 0] && p.0 != [255, 255, 255]) > 6 * 100 * 100);
    let out = ok(&[
        "predict",
        "--checkpoint",
        s(&straight),
        "--data",
        &data,
        "--count",
        "3",
        "--out",
        s(&fig),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let rows = v["predictions"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let total: f64 = rows[0]["probabilities"]
        .as_object()
        .unwrap()
        .values()
        .map(|x| x.as_f64().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-5, "{total}");

    // The user's own image: a red square PNG.
    let png = dir.path().join("mine.png");
    image::RgbImage::from_fn(50, 40, |x, _| image::Rgb([200, (x * 5) as u8, 10]))
        .save(&png)
        .unwrap();
    let out = ok(&[
        "predict",
        "--checkpoint",
        s(&straight),
        "--image",
        s(&png),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["classes"].as_array().unwrap().len(), 10);
    assert!(CLASS_NAMES.contains(&v["predicted"].as_str().unwrap()));
    let out = ok(&["predict", "--checkpoint", s(&straight), "--image", s(&png)]);
    assert!(out.contains('%'), "{out}");
    assert!(!out.contains("figure"), "no --out, no figure: {out}");
    // --out is honoured with --image too: the one-image figure, written whole.
    let one = dir.path().join("one/mine-pred.png");
    let out = ok(&[
        "predict",
        "--checkpoint",
        s(&straight),
        "--image",
        s(&png),
        "--out",
        s(&one),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["figure"], s(&one));
    let img = image::open(&one).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), gdl_gpu::render::figure_size(1, 32));
    assert!(caption_ink(&img) > 100, "a caption");
    let left: Vec<_> = std::fs::read_dir(one.parent().unwrap()).unwrap().collect();
    assert_eq!(left.len(), 1, "no temporary file left beside the figure");
    // Flags that choose test images mean nothing with --image: usage errors.
    for (flag, value) in [
        ("-n", "3"),
        ("--count", "3"),
        ("--seed", "1"),
        ("--data", &*data),
    ] {
        let out = gdl(&[
            "predict",
            "--checkpoint",
            s(&straight),
            "--image",
            s(&png),
            flag,
            value,
        ]);
        let e = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {e}");
        let named = if flag == "-n" { "--count" } else { flag };
        assert!(e.contains(named) && e.contains("--image"), "{flag}: {e}");
    }
    let out = gdl(&[
        "predict",
        "--checkpoint",
        s(&straight),
        "--image",
        s(&first),
    ]);
    assert!(
        text(&out.stderr).contains("not a readable PNG or JPEG"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn unwritable_save_fails_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    // No data at that path: were the check late, the error would be about data.
    let out = gdl(&[
        "train",
        "--model",
        "mlp",
        "--data",
        s(&dir.path().join("no-data")),
        "--out",
        s(&dir.path().join("run")),
        "--save",
        s(&file.join("c.safetensors")),
    ]);
    let e = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("not writable") && e.contains("a-file"), "{e}");
    let out = gdl(&[
        "train",
        "--model",
        "mlp",
        "--data",
        "x",
        "--out",
        s(&file.join("run")),
    ]);
    assert!(
        text(&out.stderr).contains("cannot create run folder"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_checkpoint_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"not a checkpoint, just words").unwrap();
    for cmd in ["eval", "predict"] {
        let out = gdl(&[cmd, "--checkpoint", s(&junk)]);
        let e = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{e}");
        assert!(
            e.contains("junk.safetensors") && e.contains("safetensors"),
            "{e}"
        );
        assert!(!e.contains("panicked"), "{e}");
    }
}

/// SIGINT mid-epoch: the step finishes, a checkpoint records the partial
/// epoch, the exit code is 130, and --resume accepts the checkpoint.
#[cfg(unix)]
#[test]
fn ctrl_c_saves_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_cifar(dir.path(), 400);
    let run = dir.path().join("run");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gdl-gpu"))
        // The built-in kernel choice: no tuning time, and no writes to the user's tune cache.
        .env("GDL_GPU_TUNE", "off")
        .args([
            "train",
            "--model",
            "mlp",
            "--data",
            &data,
            "--out",
            s(&run),
            "--batch-size",
            "1",
            "--epochs",
            "50",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("training mlp"), "{first}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let e = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{e}");
    assert!(
        e.contains("interrupted in epoch") && e.contains("--resume"),
        "{e}"
    );
    let ck = run.join("checkpoint.safetensors");
    let info = gdl_gpu::train::checkpoint::peek(&ck).unwrap();
    assert!(info.epoch < 50);
    assert_eq!(
        info.adam_step as usize,
        info.epoch * 2000 + info.epoch_step,
        "Adam's step counts every step taken"
    );
    assert!(info.epoch_step > 0 || info.epoch > 0, "{info:?}");
}

/// A model file end to end, ours and Keras's: summary, train with --save,
/// eval and predict from the checkpoint alone (the file it came from is
/// gone by then: the checkpoint carries its model), and --resume.
#[test]
fn model_files_train_eval_predict_resume() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_cifar(dir.path(), 12);
    let root = env!("CARGO_MANIFEST_DIR");
    for (src, name, layer) in [
        (
            "assets/models/examples/residual.toml",
            "residual",
            "block1 (Add)",
        ),
        (
            "tests/fixtures/keras/residual.json",
            "functional",
            "add (Add)",
        ),
    ] {
        let ext = Path::new(src).extension().unwrap().to_str().unwrap();
        let file = dir.path().join(format!("model.{ext}"));
        std::fs::copy(Path::new(root).join(src), &file).unwrap();
        let summary = ok(&["summary", "--model", s(&file)]);
        assert!(summary.contains(layer), "{src}:\n{summary}");
        assert!(summary.contains("Connected to"), "{src}:\n{summary}");
        let ck = dir.path().join(format!("{name}.safetensors"));
        let out = dir.path().join(format!("run-{name}"));
        let train = ok(&[
            "train",
            "--model",
            s(&file),
            "--data",
            &data,
            "--epochs",
            "1",
            "--steps-per-epoch",
            "2",
            "--batch-size",
            "8",
            "--save",
            s(&ck),
            "--out",
            s(&out),
            "--json",
        ]);
        let line: serde_json::Value = serde_json::from_str(train.lines().last().unwrap()).unwrap();
        assert_eq!(line["model"], name, "{src}: {train}");
        std::fs::remove_file(&file).unwrap();
        let eval = ok(&[
            "eval",
            "--checkpoint",
            s(&ck),
            "--data",
            &data,
            "--json",
            "--backend",
            "gpu",
        ]);
        let e: serde_json::Value = serde_json::from_str(eval.trim()).unwrap();
        assert_eq!(e["examples"], 12, "{src}: {eval}");
        let cpu = ok(&[
            "eval",
            "--checkpoint",
            s(&ck),
            "--data",
            &data,
            "--json",
            "--backend",
            "cpu",
        ]);
        let c: serde_json::Value = serde_json::from_str(cpu.trim()).unwrap();
        assert_eq!(
            e["test_accuracy"], c["test_accuracy"],
            "{src}: GPU {eval} CPU {cpu}"
        );
        let fig = dir.path().join(format!("{name}.png"));
        ok(&[
            "predict",
            "--checkpoint",
            s(&ck),
            "--data",
            &data,
            "-n",
            "3",
            "--out",
            s(&fig),
        ]);
        assert!(fig.exists(), "{src}: no figure");
        ok(&[
            "train",
            "--resume",
            s(&ck),
            "--data",
            &data,
            "--epochs",
            "2",
            "--steps-per-epoch",
            "1",
        ]);
    }
}

/// A bad model file fails before any data is read, naming the file and line.
#[test]
fn bad_model_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[[layers]]\ntype = \"Dense\"\nunits = 0\n").unwrap();
    for args in [
        vec!["summary", "--model", s(&file)],
        vec!["train", "--model", s(&file), "--data", "/nonexistent"],
    ] {
        let cmd = args[0];
        let out = gdl(&args);
        let e = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {e}");
        assert!(
            e.contains("bad.toml:1") && e.contains("\"units\""),
            "{cmd}: {e}"
        );
        assert!(
            !e.contains("panicked") && !e.contains("nonexistent"),
            "{cmd}: {e}"
        );
    }
}

/// `--backend auto` (the default): the GPU on a hardware adapter; on a
/// software adapter the CPU backend, said in one line on stderr, with
/// stdout still pure JSON. `--backend gpu` forces the adapter.
#[test]
fn auto_backend_prefers_hardware_else_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_cifar(dir.path(), 8);
    let best = gdl_gpu::gpu::adapter::select(&Default::default())
        .expect("an adapter")
        .get_info();
    let software = gdl_gpu::gpu::adapter::is_software(&best);
    let ck = dir.path().join("ck.safetensors");
    let run = dir.path().join("run");
    let train = |backend: &[&str]| {
        let mut args = vec![
            "train",
            "--model",
            "conv",
            "--data",
            &data,
            "--epochs",
            "1",
            "--steps-per-epoch",
            "1",
            "--json",
            "--out",
            s(&run),
            "--save",
            s(&ck),
        ];
        args.extend(backend);
        gdl(&args)
    };
    let notes = |e: &str| -> Vec<String> {
        e.lines()
            .filter(|l| l.contains("CPU backend"))
            .map(str::to_owned)
            .collect()
    };
    // stdout is pure JSON lines; the device and the notice follow the adapter.
    let check = |out: &Output, auto: bool| -> serde_json::Value {
        let (o, e) = (text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "{o}\n{e}");
        let lines: Vec<serde_json::Value> = o
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|err| panic!("{err}: {l}")))
            .collect();
        let v = lines.last().expect("a JSON line").clone();
        let n = notes(&e);
        if auto && software {
            assert_eq!(n.len(), 1, "{e}");
            assert!(
                n[0].contains(&best.name) && n[0].contains("--backend gpu"),
                "{e}"
            );
            if let Some(d) = v.get("device") {
                assert_eq!(d, "CPU reference", "{v}");
            }
        } else {
            assert!(n.is_empty(), "{e}");
            if let Some(d) = v.get("device") {
                let d = d.as_str().unwrap();
                assert!(d.starts_with("GPU: ") && d.contains(&best.name), "{d}");
            }
        }
        v
    };
    assert_eq!(check(&train(&[]), true)["epoch"], 1);
    let e = check(
        &gdl(&["eval", "--checkpoint", s(&ck), "--data", &data, "--json"]),
        true,
    );
    assert_eq!(e["examples"], 8);
    let fig = dir.path().join("p.png");
    let p = check(
        &gdl(&[
            "predict",
            "--checkpoint",
            s(&ck),
            "--data",
            &data,
            "--json",
            "--out",
            s(&fig),
        ]),
        true,
    );
    assert_eq!(p["predictions"].as_array().unwrap().len(), 8);
    assert_eq!(check(&train(&["--backend", "gpu"]), false)["epoch"], 1);
}

/// Without --out: two runs started together get folders of their own
/// under runs/, and resuming a checkpoint kept in the current folder makes
/// a new run folder rather than writing metrics and plots into `.`.
#[test]
fn default_run_folders_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_cifar(dir.path(), 8);
    let cwd = dir.path().join("work");
    std::fs::create_dir(&cwd).unwrap();
    let args = [
        "train",
        "--model",
        "conv",
        "--data",
        &data,
        "--epochs",
        "1",
        "--steps-per-epoch",
        "1",
        "--json",
    ];
    let spawn = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_gdl-gpu"))
            // The built-in kernel choice: no tuning time, and no writes to the user's tune cache.
            .env("GDL_GPU_TUNE", "off")
            .args(args)
            .args(extra)
            .current_dir(&cwd)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(&["--save", "a.safetensors"]), spawn(&[]));
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let runs = |cwd: &Path| -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(cwd.join("runs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    };
    let first = runs(&cwd);
    assert_eq!(first.len(), 2, "{first:?}");
    for r in &first {
        let metrics = std::fs::read_to_string(r.join("metrics.jsonl")).unwrap();
        assert_eq!(metrics.lines().count(), 1, "{}: {metrics}", r.display());
        assert!(r.join("checkpoint.safetensors").is_file());
    }
    let out = Command::new(env!("CARGO_BIN_EXE_gdl-gpu"))
        // The built-in kernel choice: no tuning time, and no writes to the user's tune cache.
        .env("GDL_GPU_TUNE", "off")
        .args(["train", "--resume", "a.safetensors", "--epochs", "2"])
        .args(["--data", &data, "--steps-per-epoch", "1"])
        .current_dir(&cwd)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut top: Vec<String> = std::fs::read_dir(&cwd)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    top.sort();
    assert_eq!(top, ["a.safetensors", "runs"], "nothing scattered into .");
    let after = runs(&cwd);
    assert_eq!(after.len(), 3, "{after:?}");
    let new = after.iter().find(|r| !first.contains(r)).unwrap();
    let metrics = std::fs::read_to_string(new.join("metrics.jsonl")).unwrap();
    assert!(metrics.contains("\"epoch\":2"), "{metrics}");
    assert!(new.join("training.png").is_file());
}

/// A missing adapter fails before any data is read or folder made; eval
/// and predict read only the test batch (here the only one there is).
#[test]
fn adapter_before_data_and_test_split_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_cifar(dir.path(), 6);
    let ck = dir.path().join("ck.safetensors");
    let run = dir.path().join("run");
    ok(&[
        "train",
        "--model",
        "conv",
        "--data",
        &data,
        "--epochs",
        "1",
        "--steps-per-epoch",
        "1",
        "--out",
        s(&run),
        "--save",
        s(&ck),
    ]);
    let fresh = dir.path().join("fresh");
    for cmd in [
        &["train", "--model", "mlp", "--out", s(&fresh)][..],
        &["eval", "--checkpoint", s(&ck)],
        &["predict", "--checkpoint", s(&ck)],
    ] {
        let mut args = cmd.to_vec();
        args.extend(["--backend", "gpu", "--adapter", "no-such-gpu-xyz"]);
        args.extend(["--data", "/nonexistent-cifar"]);
        let out = gdl(&args);
        let e = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}: {e}");
        assert!(e.contains("no-such-gpu-xyz"), "{cmd:?}: {e}");
        assert!(
            !e.contains("nonexistent-cifar"),
            "{cmd:?}: data read first: {e}"
        );
    }
    assert!(
        !fresh.exists(),
        "a run folder made before the adapter opened"
    );
    for f in TRAIN_FILES {
        std::fs::remove_file(Path::new(&data).join(f)).unwrap();
    }
    let out = ok(&["eval", "--checkpoint", s(&ck), "--data", &data, "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["examples"], 6);
    let out = ok(&[
        "predict",
        "--checkpoint",
        s(&ck),
        "--data",
        &data,
        "--json",
        "--count",
        "4",
        "--out",
        s(&dir.path().join("p.png")),
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["predictions"].as_array().unwrap().len(), 4);
    // Training still needs every batch, and names the missing ones.
    let out = gdl(&[
        "train",
        "--model",
        "conv",
        "--data",
        &data,
        "--out",
        s(&run),
    ]);
    let e = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("data_batch_1.bin"), "{e}");
}

/// Off a terminal (stderr piped, as in CI or under nohup) train prints
/// progress lines to stderr at an interval (10 s; 0 here, through the
/// test-only GDL_GPU_PROGRESS_SECS): one at each metrics check but the
/// epoch's last. stdout (--json) stays pure JSON.
#[test]
fn progress_lines_without_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    // 120 records a file: 600 training images, 150 steps of 4.
    let data = tiny_cifar(dir.path(), 120);
    let run = |every: &str| {
        Command::new(env!("CARGO_BIN_EXE_gdl-gpu"))
            // The built-in kernel choice: no tuning time, and no writes to the user's tune cache.
            .env("GDL_GPU_TUNE", "off")
            .args(["train", "--model", "mlp", "--data", &data, "--epochs", "1"])
            .args([
                "--batch-size",
                "4",
                "--json",
                "--out",
                s(&dir.path().join("run")),
            ])
            .env("GDL_GPU_PROGRESS_SECS", every)
            .output()
            .unwrap()
    };
    let out = run("0");
    let (o, e) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{e}");
    let lines: Vec<&str> = e
        .lines()
        .filter(|l| l.starts_with("Epoch 1/1: step "))
        .collect();
    assert_eq!(lines.len(), 2, "checks after steps 50 and 100: {e}");
    assert!(
        lines[0].starts_with("Epoch 1/1: step 50/150 (33%) - loss "),
        "{e}"
    );
    assert!(
        lines[1].starts_with("Epoch 1/1: step 100/150 (67%) - loss "),
        "{e}"
    );
    assert!(lines[1].contains("s left in the epoch"), "{e}");
    assert_eq!(o.lines().count(), 1, "{o}");
    serde_json::from_str::<serde_json::Value>(o.trim()).unwrap();
    // A bad interval is an error naming the variable.
    let out = run("");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("GDL_GPU_PROGRESS_SECS"));
    // The default interval (10 s) prints none in a run this short.
    let out = Command::new(env!("CARGO_BIN_EXE_gdl-gpu"))
        // The built-in kernel choice: no tuning time, and no writes to the user's tune cache.
        .env("GDL_GPU_TUNE", "off")
        .args(["train", "--model", "mlp", "--data", &data, "--epochs", "1"])
        .args([
            "--steps-per-epoch",
            "60",
            "--out",
            s(&dir.path().join("run")),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        !text(&out.stderr).contains(": step "),
        "{}",
        text(&out.stderr)
    );
}
