//! `gdl-gpu tune`: time every GEMM configuration the adapter can run at
//! each GEMM shape of a model's training and evaluation programs, and
//! every method of each convolution pass, keep the fastest in the tune
//! cache, and print what won.

use anyhow::Context;
use clap::Args;
use gdl_gpu::data::cifar10::{TEST_IMAGES, TRAIN_IMAGES};
use gdl_gpu::tune::{ConvResult, GemmResult, Outcome, Policy, Results, Tuner, TUNE_ENV};
use indicatif::{ProgressBar, ProgressStyle};

use super::{parse_model, parse_positive};

#[derive(Debug, Clone, Args)]
pub struct TuneArgs {
    /// Model: a built-in (mlp, conv, cnn) or a model file (.toml, or Keras's model.to_json() .json)
    #[arg(long, value_name = "NAME|PATH", value_parser = parse_model)]
    pub model: String,
    /// The training batch size to tune for (evaluation's batch follows from the adapter)
    #[arg(long, default_value = "32", value_name = "N", value_parser = parse_positive,
          allow_negative_numbers = true)]
    pub batch_size: usize,
    /// Substring of the adapter's name (see `gdl-gpu info`)
    #[arg(long, value_name = "NAME")]
    pub adapter: Option<String>,
    /// Print one JSON document instead of the table
    #[arg(long)]
    pub json: bool,
}

fn tried<'a>(outcomes: impl Iterator<Item = &'a Outcome> + Clone) -> String {
    let count = |f: fn(&Outcome) -> bool| outcomes.clone().filter(|o| f(o)).count();
    let total = outcomes.clone().count();
    let mut notes = Vec::new();
    for (n, what) in [
        (count(|o| matches!(o, Outcome::Abandoned(_))), "cut short"),
        (count(|o| matches!(o, Outcome::Wrong { .. })), "wrong"),
        (count(|o| matches!(o, Outcome::Failed(_))), "failed"),
    ] {
        if n > 0 {
            notes.push(format!("{n} {what}"));
        }
    }
    if notes.is_empty() {
        total.to_string()
    } else {
        format!("{total} ({})", notes.join(", "))
    }
}

/// One row of the table: case, tried, winner, µs, GFLOP/s, built-in µs,
/// speed-up.
type Row = [String; 7];

/// A row from the case's key, what was tried, the winner's label, and
/// (winner s, GFLOP/s, built-in s).
fn row(key: String, tried: String, winner: String, (w, gflops, b): (f64, f64, f64)) -> Row {
    [
        key,
        tried,
        winner,
        format!("{:.1}", w * 1e6),
        format!("{gflops:.2}"),
        format!("{:.1}", b * 1e6),
        format!("{:.2}×", b / w),
    ]
}

fn gemm_row(r: &GemmResult) -> Row {
    let tried = tried(r.trials.iter().map(|t| &t.outcome));
    let times = (r.winner_s, r.gflops(), r.builtin_s);
    row(r.case.key(), tried, r.winner.label(), times)
}

fn conv_row(r: &ConvResult) -> Row {
    let tried = tried(r.trials.iter().map(|t| &t.outcome));
    let times = (r.winner_s, r.gflops(), r.builtin_s);
    row(r.case.key(), tried, r.winner.label().into(), times)
}

fn table(results: &Results) -> String {
    let header = [
        "case",
        "tried",
        "winner",
        "µs",
        "GFLOP/s",
        "built-in µs",
        "speed-up",
    ];
    let rows: Vec<Row> = results
        .gemm
        .iter()
        .map(gemm_row)
        .chain(results.conv.iter().map(conv_row))
        .collect();
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = " ".repeat(w[i] - c.chars().count());
                // Text columns left, numbers right.
                if i < 3 {
                    format!("{c}{pad}")
                } else {
                    format!("{pad}{c}")
                }
            })
            .collect();
        parts.join("  ").trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    out.push_str(&"-".repeat(w.iter().sum::<usize>() + 2 * (w.len() - 1)));
    out.push('\n');
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

fn trial(config: &str, outcome: &Outcome) -> serde_json::Value {
    let (outcome, us, note) = match outcome {
        Outcome::Timed(s) => ("timed", Some(s * 1e6), None),
        Outcome::Abandoned(s) => ("cut short", Some(s * 1e6), None),
        Outcome::Wrong { worst } => (
            "wrong",
            None,
            Some(format!("{worst:.3e} × the rounding bound")),
        ),
        Outcome::Failed(e) => ("failed", None, Some(e.clone())),
    };
    serde_json::json!({
        "config": config,
        "outcome": outcome,
        "us": us,
        "note": note,
    })
}

fn conv_json(results: &[ConvResult]) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            let trials: Vec<serde_json::Value> = r
                .trials
                .iter()
                .map(|t| trial(t.method.label(), &t.outcome))
                .collect();
            let g = &r.case.geom;
            serde_json::json!({
                "key": r.case.key(),
                "pass": r.case.pass.name(),
                "batch": g.batch,
                "in_h": g.window.in_h,
                "in_w": g.window.in_w,
                "in_c": g.in_c,
                "out_c": g.out_c,
                "winner": r.winner.label(),
                "winner_us": r.winner_s * 1e6,
                "gflops": r.gflops(),
                "builtin": r.builtin.label(),
                "builtin_us": r.builtin_s * 1e6,
                "clock": r.clock.name(),
                "trials": trials,
            })
        })
        .collect();
    serde_json::json!(rows)
}

fn json(results: &[GemmResult]) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            let trials: Vec<serde_json::Value> = r
                .trials
                .iter()
                .map(|t| trial(&t.config.label(), &t.outcome))
                .collect();
            serde_json::json!({
                "key": r.case.key(),
                "m": r.case.shape.m,
                "n": r.case.shape.n,
                "k": r.case.shape.k,
                "trans_a": r.case.shape.trans_a,
                "trans_b": r.case.shape.trans_b,
                "bias": r.case.bias,
                "accumulate": r.case.accumulate,
                "winner": r.winner.label(),
                "winner_us": r.winner_s * 1e6,
                "gflops": r.gflops(),
                "builtin": r.builtin.label(),
                "builtin_us": r.builtin_s * 1e6,
                "clock": r.clock.name(),
                "trials": trials,
            })
        })
        .collect();
    serde_json::json!(rows)
}

pub fn run(args: &TuneArgs) -> anyhow::Result<()> {
    if Policy::from_env(Policy::TuneMissing)? == Policy::BuiltIn {
        anyhow::bail!("{TUNE_ENV}=off turns tuning off; unset it to tune");
    }
    let graph = gdl_gpu::models::load_graph(&args.model)?;
    let gpu = super::open_gpu(args.adapter.as_deref())?;
    let cases =
        gdl_gpu::train::gpu::run_cases(&gpu, &graph, args.batch_size, TRAIN_IMAGES, TEST_IMAGES)?;
    let mut tuner = Tuner::new(&gpu, Policy::TuneMissing);
    let bar = ProgressBar::new(cases.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("tuning {bar:30} {pos}/{len} [{elapsed_precise}] {msg}")
            .expect("static template"),
    );
    let t = std::time::Instant::now();
    let results = tuner
        .tune(&gpu, &cases, &mut |i, case| {
            bar.set_position(i as u64);
            bar.set_message(case.to_owned());
        })
        .with_context(|| format!("tuning {} on {}", graph.name, gpu.name()))?;
    bar.finish_and_clear();
    let seconds = t.elapsed().as_secs_f64();
    let cache = tuner.cache_path().map_or_else(
        || "not kept (no cache folder)".into(),
        |p| p.display().to_string(),
    );
    if args.json {
        let doc = serde_json::json!({
            "model": graph.name,
            "batch_size": args.batch_size,
            "adapter": gpu.name(),
            "clock": results.clock().map(|c| c.name()),
            "seconds": seconds,
            "cache": cache,
            "shapes": json(&results.gemm),
            "convolutions": conv_json(&results.conv),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!(
            "{} at batch {} on {}: {} GEMM shapes and {} convolution passes tuned in {seconds:.1} s ({}); cache: {cache}",
            graph.name,
            args.batch_size,
            gpu.name(),
            results.gemm.len(),
            results.conv.len(),
            results.clock().map_or("-", |c| c.name()),
        );
        print!("{}", table(&results));
    }
    Ok(())
}
