//! The `gdl-gpu` binary: parse, run, report. clap's usage errors exit with
//! code 2 (its own convention); every other failure prints the error chain
//! and exits with 1.

use std::process::ExitCode;

use clap::Parser;
mod cli;

use cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
