//! `gdl-gpu bench`: benchmark every kernel, the fixed overheads and the
//! models' training throughput on an adapter, optionally as a JSON report;
//! or compare such reports from several adapters.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use gdl_gpu::bench::compare::{format_comparison, Report};

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Substring of the adapter's name (see `gdl-gpu info`)
    #[arg(long, value_name = "NAME")]
    pub adapter: Option<String>,
    /// Fewer sizes and repetitions
    #[arg(long)]
    pub quick: bool,
    /// Also write the results as JSON
    #[arg(long, value_name = "FILE.json")]
    pub out: Option<PathBuf>,
    /// Training rows for these models (built-in names or model files)
    /// instead of the built-ins; repeatable
    #[arg(long, value_name = "NAME|PATH", value_parser = super::parse_model)]
    pub model: Vec<String>,
    /// Print these reports (from --out) as one table instead of benchmarking;
    /// ratios are relative to the first
    #[arg(long, value_name = "FILE.json", num_args = 1.., conflicts_with_all = ["adapter", "quick", "out", "model"])]
    pub compare: Vec<PathBuf>,
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if !args.compare.is_empty() {
        let reports = args
            .compare
            .iter()
            .map(|p| Ok((p.clone(), Report::load(p)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        print!("{}", format_comparison(&reports));
        return Ok(());
    }
    // Model files are read before the adapter opens: a bad one fails first.
    let models = args
        .model
        .iter()
        .map(|m| gdl_gpu::models::load_graph(m))
        .collect::<Result<Vec<_>, _>>()?;
    let gpu = super::open_gpu(args.adapter.as_deref())?;
    let rows = if models.is_empty() {
        gdl_gpu::bench::suite(&gpu, args.quick)?
    } else {
        gdl_gpu::bench::suite_with_models(&gpu, args.quick, &models)?
    };
    print!("{}", gdl_gpu::bench::format_table(&gpu, &rows));
    if let Some(path) = &args.out {
        let report = gdl_gpu::bench::report::report_json(&gpu, &rows, args.quick);
        // Written whole to a temporary name, then renamed: never a half report.
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
        println!("report written to {}", path.display());
    }
    Ok(())
}
