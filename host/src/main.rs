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
        if opts.mirror_only {
            let source = busca_host::source::BundleSource::open(
                &opts.bundles,
                &opts.connect_options(),
                opts.mirror_dir.as_deref(),
            )
            .await?;
            println!("{}: {}", source.local_root().display(), busca_host::source::state_key(source.local_root())?);
            return anyhow::Ok(());
        }
        let server = busca_host::start(&opts).await?;
        println!("busca-serve listening on http://{}", server.addr);
        server.run_until_signal().await;
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod cli_tests {
    use clap::CommandFactory;

    /// clap's own consistency checks on every argument and subcommand
    /// (duplicate flags, bad defaults, conflicting names) fail here, not at
    /// a user's first run.
    #[test]
    fn the_command_line_is_well_formed() {
        busca_host::ServeOptions::command().debug_assert();
    }
}
