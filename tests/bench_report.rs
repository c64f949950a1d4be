//! `gdl-gpu bench` as a cross-vendor report: `--quick --out` on the
//! default adapter (whichever it is: lavapipe in CI) writes every field `--compare` and a
//! reader need; `--compare` tables synthetic reports.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};

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

/// `gdl-gpu bench --compare files…`, asserting success; stdout.
fn compare(files: &[&Path]) -> String {
    let mut args = vec!["bench", "--compare"];
    args.extend(files.iter().map(|p| p.to_str().unwrap()));
    let out = gdl(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn quick_bench_writes_a_full_report() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    // Training rows for the built-ins and a model file (`--model`).
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/models/examples/residual.toml"
    );
    let out = gdl(&[
        "bench",
        "--quick",
        "--out",
        path.to_str().unwrap(),
        "--model",
        "mlp",
        "--model",
        "conv",
        "--model",
        "cnn",
        "--model",
        example,
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("report written to"), "{stdout}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();

    assert_eq!(r["schema"], 1);
    assert_eq!(r["quick"], true);
    assert_eq!(r["gdl_gpu"]["version"], env!("CARGO_PKG_VERSION"));
    let rev = r["gdl_gpu"]["git_revision"].as_str().unwrap();
    assert!(
        rev == "unknown" || (rev.len() >= 4 && rev.chars().all(|c| c.is_ascii_hexdigit())),
        "git_revision {rev:?}"
    );
    // RFC 3339 UTC to the second: 2024-03-01T12:34:56Z.
    let date = r["date"].as_str().unwrap();
    let b = date.as_bytes();
    assert_eq!(b.len(), 20, "{date}");
    for (i, c) in b.iter().enumerate() {
        match i {
            4 | 7 => assert_eq!(*c, b'-', "{date}"),
            10 => assert_eq!(*c, b'T', "{date}"),
            13 | 16 => assert_eq!(*c, b':', "{date}"),
            19 => assert_eq!(*c, b'Z', "{date}"),
            _ => assert!(c.is_ascii_digit(), "{date}"),
        }
    }
    assert!(date >= "2024", "{date}");

    let a = &r["adapter"];
    for key in ["name", "device_type", "backend", "driver", "driver_info"] {
        assert!(a[key].is_string(), "adapter.{key} missing: {a}");
    }
    assert!(a["vendor"].is_u64() && a["device"].is_u64(), "{a}");
    // The report names the adapter the library opens by default.
    let gpu = gdl_gpu::Gpu::new().expect("an adapter");
    assert_eq!(a["name"], gpu.info.name.as_str(), "{a}");
    assert_eq!(
        a["device_type"],
        format!("{:?}", gpu.info.device_type),
        "{a}"
    );
    let f = &a["features_used"];
    // Exactly the features a kernel or the timer uses (no shader_f16: no
    // shader uses it), each as the opened device has it.
    let mut keys: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "subgroup_max_size",
            "subgroup_min_size",
            "subgroups",
            "timestamp_query"
        ],
        "{f}"
    );
    assert_eq!(f["subgroups"], gpu.caps.subgroups, "{f}");
    assert_eq!(f["timestamp_query"], gpu.caps.timestamps, "{f}");
    assert!(
        a["limits"]["max_storage_buffer_binding_size"]
            .as_u64()
            .unwrap()
            >= 1 << 27,
        "{a}"
    );

    let results = r["results"].as_array().unwrap();
    let find = |kernel: &str, shape_part: &str| {
        results
            .iter()
            .find(|x| x["kernel"] == kernel && x["shape"].as_str().unwrap().contains(shape_part))
            .unwrap_or_else(|| panic!("no {kernel} {shape_part} row"))
    };
    for row in results {
        let rate = row["rate"].as_f64().unwrap();
        let secs = row["median_seconds"].as_f64().unwrap();
        assert!(rate.is_finite() && rate > 0.0, "{row}");
        assert!(secs.is_finite() && secs > 0.0, "{row}");
        for key in ["kernel", "shape", "unit", "clock"] {
            assert!(row[key].is_string(), "{row}");
        }
        assert!(row["higher_is_better"].is_boolean(), "{row}");
    }
    // The GEMM the adapter would pick is measured (quick skips only the
    // tiled variant on software adapters, where it is never chosen).
    use gdl_gpu::kernels::gemm::{auto_variant, Variant};
    let picked = match auto_variant(&gpu) {
        Variant::Tiled => "gemm tiled",
        Variant::RegisterBlocked => "gemm regblock",
        Variant::Subgroup => "gemm subgroup",
        Variant::Auto => panic!("auto_variant names a concrete variant"),
    };
    find(picked, "mlp fwd");
    for (kernel, unit) in [
        ("dispatch_overhead", "µs/dispatch"),
        ("submit_overhead", "µs/submit"),
        ("readback_overhead", "µs/readback"),
    ] {
        let row = find(kernel, "");
        assert_eq!(row["unit"], unit);
        assert_eq!(row["higher_is_better"], false);
    }
    for model in ["mlp", "conv", "cnn", "residual"] {
        let row = find("train_step", &format!("{model} batch=32"));
        assert_eq!(row["unit"], "images/s");
        assert_eq!(row["clock"], "wall clock");
        // rate · seconds = images per timed run, a whole number of batches.
        let images = row["rate"].as_f64().unwrap() * row["median_seconds"].as_f64().unwrap();
        assert!(
            (images / 32.0 - (images / 32.0).round()).abs() < 1e-6,
            "{row}"
        );
    }

    // The report compares with itself: every ratio is exactly 1.
    let table = compare(&[&path, &path]);
    assert!(table.contains("train_step"), "{table}");
    assert!(!table.contains("(×?)"), "{table}");
    let ratios: Vec<&str> = table.matches("(×1.00)").collect();
    assert_eq!(ratios.len(), results.len(), "{table}");
}

/// A synthetic report as `bench --out` writes it.
fn report(name: &str, rev: &str, rows: &[(&str, &str, f64, &str, bool)]) -> Value {
    json!({
        "schema": 1,
        "gdl_gpu": {"version": "0.1.0", "git_revision": rev},
        "date": "2024-03-01T12:00:00Z",
        "quick": false,
        "adapter": {"name": name, "backend": "Vulkan", "vendor": 4318, "device": 1,
                    "device_type": "DiscreteGpu", "driver": "d", "driver_info": "i"},
        "results": rows.iter().map(|(k, s, rate, unit, hib)| json!({
            "kernel": k, "shape": s, "median_seconds": 1e-3, "rate": rate,
            "unit": unit, "higher_is_better": hib, "clock": "timestamps",
        })).collect::<Vec<_>>(),
    })
}

#[test]
fn compare_tables_reports_with_ratios_to_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    std::fs::write(
        &a,
        report(
            "Slow GPU",
            "aaaa111",
            &[
                ("gemm", "1024^3", 100.0, "GFLOP/s", true),
                ("dispatch_overhead", "100", 8.0, "µs/dispatch", false),
                ("only_in_a", "x", 1.0, "GB/s", true),
            ],
        )
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        &b,
        report(
            "Fast GPU",
            "bbbb222",
            &[
                ("gemm", "1024^3", 250.0, "GFLOP/s", true),
                // Half the latency: twice as fast.
                ("dispatch_overhead", "100", 4.0, "µs/dispatch", false),
                ("only_in_b", "y", 3.0, "images/s", true),
            ],
        )
        .to_string(),
    )
    .unwrap();
    let table = compare(&[&a, &b]);
    let line = |prefix: &str| {
        table
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?} in\n{table}"))
            .to_owned()
    };
    assert!(line("A:").contains("Slow GPU [Vulkan]"), "{table}");
    assert!(line("A:").contains("0.1.0 (aaaa111)"), "{table}");
    assert!(line("B:").contains("Fast GPU [Vulkan]"), "{table}");
    assert!(line("B:").contains("b.json"), "{table}");
    let gemm = line("gemm ");
    assert!(gemm.contains("GFLOP/s"), "{gemm}");
    assert!(gemm.contains("100.0"), "{gemm}");
    assert!(gemm.contains("250.0 (×2.50)"), "{gemm}");
    let disp = line("dispatch_overhead");
    assert!(disp.contains("8.00"), "{disp}");
    assert!(disp.contains("4.00 (×2.00)"), "{disp}");
    // Rows one report lacks show "-" there, in first-seen order.
    let only_a = line("only_in_a");
    assert!(only_a.trim_end().ends_with('-'), "{only_a}");
    let only_b = line("only_in_b");
    assert!(
        only_b.contains(" - ") && only_b.contains("3.00"),
        "{only_b}"
    );
    assert!(!only_b.contains('×'), "{only_b}");
    let pos = |s: &str| table.find(s).unwrap();
    assert!(pos("gemm ") < pos("dispatch_overhead") && pos("only_in_a") < pos("only_in_b"));
}

#[test]
fn compare_rejects_missing_and_malformed_reports() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let out = gdl(&["bench", "--compare", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("missing.json"),
        "{}",
        text(&out.stderr)
    );

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{not json").unwrap();
    let out = gdl(&["bench", "--compare", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not JSON"),
        "{}",
        text(&out.stderr)
    );

    let wrong = dir.path().join("wrong.json");
    std::fs::write(
        &wrong,
        r#"{"adapter": {"name": "x"}, "results": [{"kernel": "k"}]}"#,
    )
    .unwrap();
    let out = gdl(&["bench", "--compare", wrong.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("not a gdl-gpu bench report") && err.contains("result 0"),
        "{err}"
    );

    // --compare runs no benchmark, so benchmark flags make no sense with it.
    let out = gdl(&["bench", "--quick", "--compare", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}
