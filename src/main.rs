//! The `gdl-gpu` binary: parse, run, report. clap's usage errors exit with
//! code 2 (its own convention); every other failure prints the error chain
//! and exits with 1.

use std::process::ExitCode;

use clap::Parser;
mod cli;

use cli::Cli;

fn main() -> ExitCode {
    // Mesa's drivers warn on every start without XDG_RUNTIME_DIR; set it
    // before any thread exists, only when the user has not.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let cli = Cli::parse();
    if let Err(e) = cli.validate() {
        e.exit();
    }
    match cli::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // 128 + SIGINT, the shell's code for a run stopped by Ctrl-C.
            match e.downcast_ref::<gdl_gpu::train::FitError>() {
                Some(gdl_gpu::train::FitError::Interrupted { .. }) => ExitCode::from(130),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
