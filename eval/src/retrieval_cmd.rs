//! The `retrieval` subcommand: encodes each logged query with the bundle's
//! model and ranks the bundle's shots natively with the core search code.

use std::path::PathBuf;

use anyhow::Result;

/// Arguments of `busca-eval retrieval`.
#[derive(clap::Args, Debug)]
pub struct RetrievalArgs {
    /// A collection directory (its CURRENT version) or a version directory.
    #[arg(long)]
    pub bundle: PathBuf,
    /// Model directory (manifest.json + ONNX files) the bundle was built with.
    #[arg(long)]
    pub model: PathBuf,
    /// Query log CSV: video,start,end,query,image.
    #[arg(long)]
    pub queries: PathBuf,
    /// Print JSON (summary and per-query ranks) instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Runs the retrieval evaluation.
pub fn run(_args: RetrievalArgs) -> Result<()> {
    anyhow::bail!("retrieval evaluation needs the indexer's encoders; not wired yet")
}
