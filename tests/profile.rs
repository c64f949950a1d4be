//! `gdl-gpu profile`: one row per instruction of the lowered training step,
//! named by layer and phase, with shares summing to 100% and rates, on the
//! CPU backend and on whatever adapter `Gpu::new()` opens (timed with the
//! best timestamps it has, else by wall clock; checked by feature, never by
//! driver name).

use std::collections::BTreeSet;
use std::process::{Command, Output};

use gdl_gpu::gpu::GpuOptions;
use gdl_gpu::graph::lower::lower;
use gdl_gpu::graph::origin::Phase;
use gdl_gpu::graph::params::ParamLayout;
use gdl_gpu::graph::program::{Inst, Mode};
use gdl_gpu::graph::Graph;
use gdl_gpu::kernels::gemm::{self, Variant};
use gdl_gpu::models;
use gdl_gpu::profile::{self, Method, Profile, ProfileConfig};
use gdl_gpu::Gpu;

const CFG: ProfileConfig = ProfileConfig {
    batch: 32,
    steps: 2,
    warmup: 1,
};

fn mlp() -> Graph {
    models::builtin_graph("mlp").unwrap()
}

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

/// What every profile of the MLP satisfies, whatever timed it.
fn check(p: &Profile, graph: &Graph) {
    let layout = ParamLayout::new(graph);
    let prog = lower(graph, &layout, CFG.batch, Mode::Train).unwrap();
    assert_eq!(p.rows.len(), prog.insts.len(), "one row per instruction");
    assert_eq!(p.totals.instructions, prog.insts.len());
    for (i, (row, inst)) in p.rows.iter().zip(&prog.insts).enumerate() {
        assert_eq!(row.index, i);
        let o = prog.origin[i];
        assert_eq!(row.phase, o.phase, "row {i}");
        match o.node {
            Some(n) => assert_eq!(row.layer, graph.nodes[n].name, "row {i}"),
            None => assert_eq!(row.phase, Phase::Optimizer),
        }
        assert_eq!(row.kernel, profile::kernel_name(inst));
        assert!(row.median_us >= 0.0 && row.median_us.is_finite(), "{row:?}");
        assert!(row.bytes > 0, "{row:?}");
        if let Inst::Gemm { shape, .. } = inst {
            assert_eq!(row.flops, Some(shape.flops()));
            assert!(
                row.gflops().unwrap() > 0.0,
                "GEMM row without GFLOP/s: {row:?}"
            );
        } else {
            assert_eq!(row.flops, None, "{row:?}");
        }
    }
    // Every layer appears, but Flatten, which lowers to no instruction.
    let named: BTreeSet<&str> = p.rows.iter().map(|r| r.layer.as_str()).collect();
    for node in &graph.nodes {
        let silent = p.silent_layers.contains(&node.name);
        assert_ne!(named.contains(node.name.as_str()), silent, "{}", node.name);
    }
    assert_eq!(p.silent_layers, vec!["flatten".to_owned()]);
    for phase in [
        Phase::Forward,
        Phase::Loss,
        Phase::Backward,
        Phase::Optimizer,
    ] {
        assert!(p.rows.iter().any(|r| r.phase == phase), "no {phase:?} row");
    }
    let shares: f64 = p.rows.iter().map(|r| r.share).sum();
    assert!((shares - 100.0).abs() < 0.01, "shares sum to {shares}");
    let t = &p.totals;
    assert!(t.instructions_us > 0.0 && t.step_wall_us > 0.0, "{t:?}");
    assert!((t.overhead_us - (t.step_wall_us - t.instructions_us)).abs() < 1e-6);
    assert_eq!(t.bytes, p.rows.iter().map(|r| r.bytes).sum::<u64>());
    assert_eq!(p.steps, CFG.steps);
}

#[test]
fn every_program_records_each_instructions_origin() {
    for name in models::builtin_names() {
        let g = models::builtin_graph(name).unwrap();
        let layout = ParamLayout::new(&g);
        for mode in [Mode::Train, Mode::Eval, Mode::Predict] {
            let p = lower(&g, &layout, 4, mode).unwrap();
            assert_eq!(p.origin.len(), p.insts.len(), "{name} {mode:?}");
            let adam = p.insts.iter().filter(|i| matches!(i, Inst::Adam)).count();
            let optimizer = p.origin.iter().filter(|o| o.node.is_none()).count();
            assert_eq!(
                adam, optimizer,
                "{name} {mode:?}: only Adam spans every layer"
            );
            assert_eq!(
                p.origin.iter().any(|o| o.phase == Phase::Backward),
                mode == Mode::Train
            );
            // The forward walk first, the head, then backward, then Adam.
            assert!(
                p.origin.windows(2).all(|w| w[0].phase <= w[1].phase),
                "{name} {mode:?}: phases out of order"
            );
        }
    }
}

#[test]
fn cpu_profile_of_the_mlp() {
    let p = profile::cpu::profile(&mlp(), &CFG).unwrap();
    assert_eq!(p.method, Method::CpuWallClock);
    assert_eq!(p.totals.dispatches, None);
    check(&p, &mlp());
    let gemm = p.rows.iter().find(|r| r.kernel == "gemm").unwrap();
    assert_eq!(gemm.variant, "matrixmultiply");
}

/// The method the adapter's features allow, and the GEMM variant that ran.
fn check_gpu(gpu: &Gpu, p: &Profile) {
    let want = if gpu.caps.timestamps_inside_passes {
        Method::TimestampsInsidePasses
    } else if gpu.caps.timestamps {
        Method::PassTimestamps
    } else {
        Method::GpuWallClock
    };
    assert_eq!(p.method, want, "caps {:?}", gpu.caps);
    eprintln!("{}: timed with {}", gpu.name(), p.method.name());
    check(p, &mlp());
    let tag = match gemm::auto_variant(gpu) {
        Variant::Tiled => "tiled",
        Variant::RegisterBlocked => "regblock",
        Variant::Subgroup => "subgroup",
        Variant::Auto => unreachable!(),
    };
    for r in p.rows.iter().filter(|r| r.kernel == "gemm") {
        assert!(r.variant.starts_with(tag), "{tag}: {r:?}");
        assert!(
            r.entries.iter().any(|e| e == &format!("gemm_{tag}")),
            "{r:?}"
        );
    }
    let dispatches: usize = p.rows.iter().map(|r| r.dispatches.unwrap()).sum();
    assert_eq!(p.totals.dispatches, Some(dispatches));
    assert!(dispatches >= p.rows.len());
    assert_eq!(p.totals.submits, Some(1));
}

#[test]
fn gpu_profile_of_the_mlp() {
    let gpu = Gpu::new().expect("an adapter");
    let p = profile::gpu::profile(&gpu, &mlp(), &CFG).unwrap();
    check_gpu(&gpu, &p);
}

/// The fallbacks, on the same adapter with features withheld: pass
/// timestamps without timestamps inside passes, wall clock without any.
#[test]
fn gpu_profile_fallbacks() {
    for (disable, what) in [
        (
            wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES,
            "no timestamps inside passes",
        ),
        (wgpu::Features::TIMESTAMP_QUERY, "no timestamps"),
    ] {
        let gpu = Gpu::with_options(&GpuOptions {
            disable: Some(disable),
            ..Default::default()
        })
        .expect("an adapter");
        assert!(!gpu.caps.timestamps_inside_passes, "{what}");
        let p = profile::gpu::profile(&gpu, &mlp(), &CFG).unwrap();
        check_gpu(&gpu, &p);
        if !gpu.caps.timestamps {
            assert_eq!(p.totals.profiled_submits, Some(p.rows.len() + 1));
        }
    }
}

fn json_of(args: &[&str]) -> serde_json::Value {
    let out = gdl(args);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}):\n{}", text(&out.stdout)))
}

fn check_json(v: &serde_json::Value, gpu: bool) {
    let rows = v["rows"].as_array().expect("rows");
    let g = mlp();
    let prog = lower(&g, &ParamLayout::new(&g), 32, Mode::Train).unwrap();
    assert_eq!(rows.len(), prog.insts.len());
    for r in rows {
        for f in [
            "index",
            "layer",
            "phase",
            "kernel",
            "variant",
            "shape",
            "median_us",
            "share",
            "bytes",
            "gbps",
            "gflops",
            "dispatches",
        ] {
            assert!(r.get(f).is_some(), "row lacks {f}: {r}");
        }
        if r["kernel"] == "gemm" {
            assert!(r["gflops"].as_f64().unwrap() > 0.0, "{r}");
        }
        assert_eq!(r["dispatches"].is_u64(), gpu, "{r}");
    }
    let shares: f64 = rows.iter().map(|r| r["share"].as_f64().unwrap()).sum();
    assert!((shares - 100.0).abs() < 0.01, "{shares}");
    let t = &v["totals"];
    for f in [
        "instructions",
        "dispatches",
        "submits",
        "bytes",
        "step_wall_us",
        "instructions_us",
        "overhead_us",
    ] {
        assert!(t.get(f).is_some(), "totals lack {f}: {t}");
    }
    assert_eq!(t["submits"].is_u64(), gpu);
    assert!(v["timing"]["method"].is_string());
    assert_eq!(v["model"], "mlp");
    assert_eq!(v["steps"], 2);
}

#[test]
fn cli_json_and_table() {
    let v = json_of(&[
        "profile",
        "--model",
        "mlp",
        "--backend",
        "cpu",
        "--steps",
        "2",
        "--json",
    ]);
    check_json(&v, false);
    assert_eq!(v["timing"]["method"], "cpu-wall-clock");
    let v = json_of(&[
        "profile",
        "--model",
        "mlp",
        "--backend",
        "gpu",
        "--steps",
        "2",
        "--json",
    ]);
    check_json(&v, true);

    let out = gdl(&[
        "profile",
        "--model",
        "mlp",
        "--backend",
        "cpu",
        "--steps",
        "2",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    for s in [
        "layer",
        "phase",
        "kernel",
        "median µs",
        "share",
        "GFLOP/s",
        "GB/s",
        "dense_1",
        "overhead",
    ] {
        assert!(table.contains(s), "table lacks {s}:\n{table}");
    }
}

#[test]
fn adapter_with_the_cpu_backend_is_a_usage_error() {
    let out = gdl(&[
        "profile",
        "--model",
        "mlp",
        "--adapter",
        "x",
        "--backend",
        "cpu",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--adapter"));
    let out = gdl(&["profile", "--model", "nope", "--backend", "cpu"]);
    assert_eq!(out.status.code(), Some(2));
    let out = gdl(&["profile", "--model", "mlp", "--steps", "0"]);
    assert_eq!(out.status.code(), Some(2));
}
