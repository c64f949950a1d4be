//! `gdl-gpu bench`: benchmark every kernel on an adapter.

use std::path::PathBuf;

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

pub fn run(_args: &BenchArgs) -> anyhow::Result<()> {
    Err(super::not_implemented("bench"))
}
