//! `busca-serve`: serve the query component over HTTP. See the library docs.

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let opts = busca_host::ServeOptions::parse();
    match run(opts) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("busca-serve: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(opts: busca_host::ServeOptions) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let server = busca_host::start(&opts).await?;
        println!("busca-serve listening on http://{}", server.addr);
        server.run_until_signal().await;
        anyhow::Ok(())
    })
}
