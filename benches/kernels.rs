//! `cargo bench`: the same suite as `gdl-gpu bench` (every kernel at the
//! models' shapes, the fixed overheads, training throughput) on the chosen
//! adapter (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME`). `-- --quick` for a short
//! run; other arguments name the families to run (e.g. `-- --quick gemm`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    // cargo passes `--bench` to bench targets; families are the plain words.
    let only: Vec<String> = args.into_iter().filter(|a| !a.starts_with('-')).collect();
    let gpu = match gdl_gpu::Gpu::new() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    match gdl_gpu::bench::suite_only(&gpu, quick, &only) {
        Ok(rows) => print!("{}", gdl_gpu::bench::format_table(&gpu, &rows)),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
