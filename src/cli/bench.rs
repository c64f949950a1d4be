//! `gdl-gpu bench`: benchmark every kernel on an adapter.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

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
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let gpu = super::open_gpu(args.adapter.as_deref())?;
    let rows = gdl_gpu::bench::suite(&gpu, args.quick)?;
    print!("{}", gdl_gpu::bench::format_table(&gpu, &rows));
    if let Some(path) = &args.out {
        let report = serde_json::json!({
            "gdl_gpu_version": env!("CARGO_PKG_VERSION"),
            "adapter": {
                "name": gpu.info.name,
                "vendor": gpu.info.vendor,
                "device": gpu.info.device,
                "device_type": format!("{:?}", gpu.info.device_type),
                "backend": format!("{:?}", gpu.info.backend),
                "driver": gpu.info.driver,
                "driver_info": gpu.info.driver_info,
                "subgroups": gpu.caps.subgroups,
                "timestamps": gpu.caps.timestamps,
            },
            "quick": args.quick,
            "results": rows.iter().map(|r| {
                let (rate, unit) = r.rate();
                serde_json::json!({
                    "kernel": r.kernel, "shape": r.shape, "median_seconds": r.seconds,
                    "rate": rate, "unit": unit, "clock": r.clock.name(),
                })
            }).collect::<Vec<_>>(),
        });
        // Written whole to a temporary name, then renamed: never a half report.
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
        println!("report written to {}", path.display());
    }
    Ok(())
}
