//! `gdl-gpu info`: every adapter wgpu finds on every backend, the limits
//! and features gdl-gpu depends on, and the adapter it would pick. The first
//! thing to run when a GPU is missing or slow.

use clap::Args;
use gdl_gpu::gpu::adapter::{self, AdapterChoice};
use gdl_gpu::gpu::GpuError;
use serde_json::{json, Value};

#[derive(Debug, Clone, Args)]
pub struct InfoArgs {
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

/// What one adapter offers, gathered once for both output formats.
struct Report {
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    subgroups: bool,
    timestamps: bool,
}

impl Report {
    fn of(a: &wgpu::Adapter) -> Report {
        let f = a.features();
        Report {
            info: a.get_info(),
            limits: a.limits(),
            subgroups: f.contains(wgpu::Features::SUBGROUP),
            timestamps: f.contains(wgpu::Features::TIMESTAMP_QUERY),
        }
    }

    fn features_line(&self) -> String {
        let mut v = Vec::new();
        if self.subgroups {
            v.push(format!(
                "subgroups (size {}..={})",
                self.info.subgroup_min_size, self.info.subgroup_max_size
            ));
        }
        if self.timestamps {
            v.push("timestamp queries".to_owned());
        }
        if v.is_empty() {
            "none of subgroups, timestamp queries".to_owned()
        } else {
            v.join(", ")
        }
    }

    fn json(&self, picked: bool) -> Value {
        let i = &self.info;
        let limits: serde_json::Map<String, Value> = adapter::key_limits(&self.limits)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        json!({
            "name": i.name,
            "vendor": i.vendor,
            "device": i.device,
            "device_type": format!("{:?}", i.device_type),
            "backend": format!("{:?}", i.backend),
            "driver": i.driver,
            "driver_info": i.driver_info,
            "limits": limits,
            "features": {
                "subgroups": self.subgroups,
                "subgroup_min_size": self.subgroups.then_some(i.subgroup_min_size),
                "subgroup_max_size": self.subgroups.then_some(i.subgroup_max_size),
                "timestamp_query": self.timestamps,
            },
            "selected": picked,
        })
    }

    fn print(&self, index: usize, picked: bool) {
        let i = &self.info;
        let mark = if picked { "  <- gdl-gpu's pick" } else { "" };
        println!("[{index}] {}{mark}", i.name);
        println!("    backend       {:?}", i.backend);
        println!("    device type   {:?}", i.device_type);
        println!("    vendor id     {:#06x}", i.vendor);
        println!("    device id     {:#06x}", i.device);
        let driver: Vec<&str> = [i.driver.as_str(), i.driver_info.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        println!("    driver        {}", driver.join(", "));
        println!("    features      {}", self.features_line());
        println!("    limits");
        for (name, v) in adapter::key_limits(&self.limits) {
            println!("      {name:<40} {v:>12}{}", human_bytes(name, v));
        }
    }
}

/// A MiB/GiB gloss for the byte-sized limits.
fn human_bytes(name: &str, v: u64) -> String {
    if !name.ends_with("_size") || name.ends_with("workgroup_size_x") || v < 1 << 20 {
        return String::new();
    }
    if v >= 1 << 30 {
        format!("  ({:.1} GiB)", v as f64 / (1u64 << 30) as f64)
    } else {
        format!("  ({:.1} MiB)", v as f64 / (1u64 << 20) as f64)
    }
}

pub fn run(args: &InfoArgs) -> anyhow::Result<()> {
    let all = AdapterChoice {
        backends: Some(wgpu::Backends::all()),
        ..Default::default()
    };
    let reports: Vec<Report> = adapter::enumerate(&all).iter().map(Report::of).collect();
    if reports.is_empty() {
        return Err(GpuError::NoAdapter {
            backends: " on any backend".to_owned(),
        }
        .into());
    }
    // The pick follows the environment (WGPU_BACKEND, WGPU_ADAPTER_NAME,
    // WGPU_POWER_PREF), exactly as training would.
    let pick = adapter::select(&AdapterChoice::default()).map(|a| a.get_info());
    let picked = |r: &Report| pick.as_ref().is_ok_and(|p| *p == r.info);
    // What `--backend auto` would run on; None when the pick failed.
    let auto = super::auto_choice(None).ok();

    if args.json {
        let out = json!({
            "adapters": reports.iter().map(|r| r.json(picked(r))).collect::<Vec<_>>(),
            // Index into `adapters`; null when the pick failed.
            "selected": reports.iter().position(picked),
            "auto_backend": auto.as_ref().map(|c| match c {
                super::AutoChoice::Gpu(a) => json!({"backend": "gpu", "adapter": a.get_info().name}),
                super::AutoChoice::Cpu(why) => json!({"backend": "cpu", "reason": why}),
            }),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{} adapter(s) on all backends, best first:\n",
            reports.len()
        );
        for (k, r) in reports.iter().enumerate() {
            r.print(k, picked(r));
            println!();
        }
        if let Ok(p) = &pick {
            println!("gdl-gpu would use: {}", adapter::describe(p));
        }
        match &auto {
            Some(super::AutoChoice::Gpu(a)) => println!(
                "--backend auto (the default of train, eval, predict) would run on: the GPU, {}",
                a.get_info().name
            ),
            Some(super::AutoChoice::Cpu(why)) => println!(
                "--backend auto (the default of train, eval, predict) would run on: the CPU backend, as {why} (--backend gpu forces the GPU)"
            ),
            None => {}
        }
    }
    pick.map(|_| ())
        .map_err(|e| anyhow::Error::new(e).context("choosing an adapter"))
}
