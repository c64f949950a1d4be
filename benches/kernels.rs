//! `cargo bench`: the same suite as `gdl-gpu bench` (every kernel at the
//! models' shapes, the fixed overheads, training throughput) on the chosen
//! adapter (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME`). `-- --quick` for a short
//! run.

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let gpu = match gdl_gpu::Gpu::new() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    match gdl_gpu::bench::suite(&gpu, quick) {
        Ok(rows) => print!("{}", gdl_gpu::bench::format_table(&gpu, &rows)),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
