//! The `gdl-gpu` binary end to end: help, `info`, and clap's validation of
//! every numeric flag (usage errors exit with 2 and name the flag).

use std::process::{Command, Output};

fn gdl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gdl-gpu"))
        // The built-in kernel choice: no tuning time, and no writes to the user's tune cache.
        .env("GDL_GPU_TUNE", "off")
        .args(args)
        .output()
        .expect("run gdl-gpu")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_lists_every_subcommand() {
    let out = gdl(&["--help"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let help = text(&out.stdout);
    for cmd in [
        "train", "eval", "summary", "predict", "bench", "info", "profile", "tune",
    ] {
        assert!(help.contains(cmd), "--help lacks {cmd}:\n{help}");
    }
    let out = gdl(&["train", "--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for flag in [
        "--model",
        "--epochs",
        "--batch-size",
        "--lr",
        "--seed",
        "--data",
        "--backend",
        "--adapter",
        "--json",
        "--out",
        "--steps-per-epoch",
    ] {
        assert!(help.contains(flag), "train --help lacks {flag}:\n{help}");
    }
}

/// `info` marks as its pick the very adapter the library opens by default,
/// named as wgpu names it: whatever adapter the machine has.
#[test]
fn info_lists_the_picked_adapter() {
    let picked = gdl_gpu::Gpu::new().expect("an adapter").info.name;
    let out = gdl(&["info"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}{}", stdout, text(&out.stderr));
    assert!(
        stdout
            .lines()
            .any(|l| l.ends_with(&format!("] {picked}  <- gdl-gpu's pick"))),
        "{picked:?} is not marked as the pick:\n{stdout}"
    );
    assert!(
        stdout.contains(&format!("gdl-gpu would use: {picked} (")),
        "{stdout}"
    );
    assert!(
        stdout.contains("max_storage_buffer_binding_size"),
        "{stdout}"
    );
    let auto = stdout
        .lines()
        .find(|l| l.starts_with("--backend auto"))
        .unwrap_or_else(|| panic!("no --backend auto line:\n{stdout}"));
    assert!(auto.contains(&picked), "{auto}");
    let software = gdl_gpu::gpu::adapter::select(&Default::default())
        .map(|a| gdl_gpu::gpu::adapter::is_software(&a.get_info()))
        .unwrap();
    let expected = if software {
        "the CPU backend"
    } else {
        "the GPU"
    };
    assert!(auto.contains(expected), "{auto}");
}

/// `--adapter` picks a GPU adapter: with `--backend cpu` it would be
/// ignored, so it is a usage error naming both flags.
#[test]
fn adapter_with_cpu_backend_is_a_usage_error() {
    for cmd in [
        &["train", "--model", "mlp"][..],
        &["eval", "--checkpoint", "c.safetensors"],
        &["predict", "--checkpoint", "c.safetensors"],
    ] {
        let mut args = cmd.to_vec();
        args.extend(["--backend", "cpu", "--adapter", "llvmpipe"]);
        let out = gdl(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("--adapter") && stderr.contains("--backend cpu"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn info_json_is_valid_and_marks_the_pick() {
    let out = gdl(&["info", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let adapters = v["adapters"].as_array().expect("adapters array");
    assert!(!adapters.is_empty());
    let k = v["selected"].as_u64().expect("selected index") as usize;
    assert_eq!(adapters[k]["selected"], true);
    let picked = gdl_gpu::Gpu::new().expect("an adapter").info.name;
    assert_eq!(adapters[k]["name"], picked.as_str());
    // `--backend auto` runs on a hardware pick and on the CPU instead of a
    // software one (lavapipe, llvmpipe, …: device type Cpu).
    let auto = &v["auto_backend"];
    if adapters[k]["device_type"] == "Cpu" {
        assert_eq!(auto["backend"], "cpu", "{auto}");
        assert!(auto["reason"].as_str().unwrap().contains(&picked), "{auto}");
    } else {
        assert_eq!(auto["backend"], "gpu", "{auto}");
        assert_eq!(auto["adapter"], picked.as_str(), "{auto}");
    }
    assert!(adapters[k]["limits"]["max_buffer_size"].as_u64().unwrap() > 0);
    // Only features a kernel or the timer uses are reported (no shader uses f16).
    for a in adapters {
        let mut keys: Vec<&str> = a["features"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "subgroup_max_size",
                "subgroup_min_size",
                "subgroups",
                "timestamp_query"
            ],
            "{a}"
        );
    }
}

#[test]
fn info_with_unknown_adapter_name_fails_cleanly() {
    let out = Command::new(env!("CARGO_BIN_EXE_gdl-gpu"))
        // The built-in kernel choice: no tuning time, and no writes to the user's tune cache.
        .env("GDL_GPU_TUNE", "off")
        .arg("info")
        .env("WGPU_ADAPTER_NAME", "no-such-gpu-xyz")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("no-such-gpu-xyz"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn adapter_flag_matching_nothing_lists_the_available_ones() {
    let out = gdl(&["bench", "--quick", "--adapter", "no-such-gpu-xyz"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("\"no-such-gpu-xyz\""), "{stderr}");
    assert!(stderr.contains("available adapters: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Bad values: exit code 2, the flag named, no panic.
#[test]
fn bad_flags_are_usage_errors() {
    let cases: &[(&[&str], &str)] = &[
        (&["train", "--model", "resnet"], "--model"),
        (
            &["train", "--model", "mlp", "--batch-size", "0"],
            "--batch-size",
        ),
        (
            &["train", "--model", "mlp", "--batch-size", "-4"],
            "--batch-size",
        ),
        (&["train", "--model", "mlp", "--epochs", "0"], "--epochs"),
        (&["train", "--model", "mlp", "--lr", "0"], "--lr"),
        (&["train", "--model", "mlp", "--lr", "-0.1"], "--lr"),
        (&["train", "--model", "mlp", "--lr", "abc"], "--lr"),
        (&["train", "--model", "mlp", "--lr", "NaN"], "--lr"),
        (
            &["train", "--model", "mlp", "--steps-per-epoch", "0"],
            "--steps-per-epoch",
        ),
        (
            &["train", "--model", "mlp", "--backend", "tpu"],
            "--backend",
        ),
        (&["eval", "--model", "vgg"], "--model"),
        (&["summary", "--model", "x"], "--model"),
        (&["tune", "--model", "x"], "--model"),
        (
            &["tune", "--model", "mlp", "--batch-size", "0"],
            "--batch-size",
        ),
        (&["predict", "--checkpoint", "c", "-n", "0"], "--count"),
        (
            &["predict", "--checkpoint", "c", "--count", "-2"],
            "--count",
        ),
        (&["train"], "--model"),
    ];
    for (args, flag) in cases {
        let out = gdl(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(flag),
            "{args:?}: {stderr:?} does not name {flag}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn summary_matches_keras_parameter_counts() {
    for (model, total, trainable, non_trainable) in [
        ("mlp", "646,260", "646,260", "0"),
        ("cnn", "592,554", "591,914", "640"),
    ] {
        let out = gdl(&["summary", "--model", model]);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{model}: {}", text(&out.stderr));
        assert!(
            stdout.contains(&format!("Total params: {total} ")),
            "{model}: {stdout}"
        );
        assert!(
            stdout.contains(&format!("Trainable params: {trainable} ")),
            "{model}: {stdout}"
        );
        assert!(
            stdout.contains(&format!("Non-trainable params: {non_trainable} ")),
            "{model}: {stdout}"
        );
        // The plan counts the dataset on the GPU and every program of an
        // epoch, and names what it leaves out.
        let mb = |b: f64| format!("{:.2} MB", b / (1024.0 * 1024.0));
        let total = stdout
            .lines()
            .find_map(|l| l.strip_prefix(" Planned GPU memory (batch 32, CIFAR-10): "))
            .unwrap_or_else(|| panic!("{model}: {stdout}"));
        let parts: Vec<&str> = stdout
            .lines()
            .skip_while(|l| !l.starts_with(" Planned GPU memory"))
            .skip(1)
            .take_while(|l| l.starts_with("   "))
            .collect();
        let bytes = |l: &str| -> f64 {
            let v: Vec<&str> = l.split_whitespace().rev().take(2).collect();
            let x: f64 = v[1].parse().unwrap();
            x * match v[0] {
                "MB" => 1024.0 * 1024.0,
                "KB" => 1024.0,
                _ => 1.0,
            }
        };
        let sum: f64 = parts.iter().map(|l| bytes(l)).sum();
        let t = bytes(total);
        assert!(
            (sum - t).abs() <= 0.01 * t,
            "{model}: parts {sum} vs total {t}"
        );
        let line = |start: &str| {
            *parts
                .iter()
                .find(|l| l.trim_start().starts_with(start))
                .unwrap()
        };
        assert!(line("training set (50000 images").ends_with(&mb(50_000.0 * 3076.0)));
        assert!(line("test set (10000 images").ends_with(&mb(10_000.0 * 3076.0)));
        // 50,000 = 1,562 batches of 32 and one of 16.
        line("training step activations, batch 32");
        line("training step activations, batch 16");
        line("evaluation activations, batch 250");
        assert!(stdout.contains(" Not counted: "), "{model}: {stdout}");
    }
}

#[test]
fn train_with_missing_data_names_the_path() {
    let dir = std::env::temp_dir().join(format!("gdl-gpu-cli-{}", std::process::id()));
    let missing = dir.join("no-such-cifar");
    let run = dir.join("run");
    let out = gdl(&[
        "train",
        "--model",
        "mlp",
        "--data",
        missing.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no-such-cifar"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `GDL_GPU_DISABLE` name gdl-gpu does not know (f16 is no longer
/// requested) is an error naming the variable and the known names.
#[test]
fn unknown_disable_name_is_an_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_gdl-gpu"))
        // The built-in kernel choice: no tuning time, and no writes to the user's tune cache.
        .env("GDL_GPU_TUNE", "off")
        .args(["bench", "--quick"])
        .env("GDL_GPU_DISABLE", "subgroups,f16")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("GDL_GPU_DISABLE") && stderr.contains("\"f16\""),
        "{stderr}"
    );
    assert!(stderr.contains("subgroups, timestamps"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
