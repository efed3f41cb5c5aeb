//! `busca-s3-bench`: what S3 costs the publisher and the edge, on a real
//! bundle version, against the server at `--endpoint-url` (credentials from
//! the standard AWS chain):
//!
//! ```text
//! busca-s3-bench --endpoint-url http://127.0.0.1:8014 --bucket b --version-dir bundles/c/versions/v000001
//! ```
//!
//! Publishes the version as the next one of collection `bench` (upload, then
//! pointer), mirrors it into a temporary folder (download and sha256 check),
//! and times the pointer poll with and without `If-None-Match`. Prints a table;
//! throughputs are beside a plain local copy of the same files, measured in the
//! same run, since what a loopback server can take depends on the machine.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use busca_core::bundle::{BundleManifest, MANIFEST_FILE};
use busca_s3::{BundleBucket, ConnectOptions, Mirror, S3Url};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "busca-s3-bench")]
struct Args {
    /// The S3-compatible server.
    #[arg(long)]
    endpoint_url: String,
    /// An existing bucket to write `bench/...` into.
    #[arg(long)]
    bucket: String,
    /// A published version directory (with manifest.json).
    #[arg(long)]
    version_dir: PathBuf,
    /// Pointer polls to time.
    #[arg(long, default_value_t = 200)]
    polls: usize,
}

const COLLECTION: &str = "bench";

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let manifest_path = args.version_dir.join(MANIFEST_FILE);
    let mut manifest: BundleManifest = serde_json::from_slice(
        &std::fs::read(&manifest_path).with_context(|| format!("reading {}", manifest_path.display()))?,
    )?;
    let bytes: u64 = manifest.files.values().map(|f| f.bytes).sum();
    let mib = bytes as f64 / (1 << 20) as f64;

    // The timed local copy is also the staged version: its manifest is
    // rewritten below to name the bench collection and version.
    let scratch = tempfile::tempdir()?;
    let staged = scratch.path().join("staged");
    let started = Instant::now();
    copy_tree(&args.version_dir, &staged)?;
    let local_copy = started.elapsed();

    let url: S3Url = format!("s3://{}/busca-s3-bench", args.bucket).parse()?;
    let options = ConnectOptions {
        endpoint_url: Some(args.endpoint_url.clone()),
        path_style: true,
        ..ConnectOptions::default()
    };
    let bucket = BundleBucket::connect(url.clone(), &options).await?;
    let version = bucket.next_version(COLLECTION).await?;
    manifest.collection = COLLECTION.into();
    manifest.version = version.clone();
    std::fs::write(staged.join(MANIFEST_FILE), serde_json::to_vec_pretty(&manifest)?)?;

    let started = Instant::now();
    bucket.upload_version(COLLECTION, &staged, &manifest).await?;
    bucket.set_current(COLLECTION, &version).await?;
    let upload = started.elapsed();

    let mirror = Mirror::new(bucket.clone(), scratch.path().join("mirror"));
    let started = Instant::now();
    let outcome = mirror.sync().await?;
    let download = started.elapsed();
    anyhow::ensure!(
        outcome.switched.iter().any(|(c, v)| c == COLLECTION && *v == version),
        "the mirror did not pick up {version}: {outcome:?}"
    );

    let etag = bucket.current(COLLECTION).await?.and_then(|p| p.etag);
    let started = Instant::now();
    for _ in 0..args.polls {
        bucket.current(COLLECTION).await?;
    }
    let full_poll = started.elapsed() / args.polls as u32;
    let started = Instant::now();
    let mut unchanged = 0;
    for _ in 0..args.polls {
        if bucket.current_if_changed(COLLECTION, etag.as_deref()).await?.is_none() {
            unchanged += 1;
        }
    }
    let conditional_poll = started.elapsed() / args.polls as u32;
    let deleted = bucket.prune(COLLECTION, 1).await?;

    let rate = |d: Duration| mib / d.as_secs_f64();
    println!("S3 bench: {} files, {mib:.1} MiB, {} → {url} ({version})", manifest.files.len(), args.version_dir.display());
    println!("| step | time | MiB/s | vs local copy |");
    println!("|---|---|---|---|");
    println!("| local copy of the files (baseline) | {:.3} s | {:.0} | 1.00× |", local_copy.as_secs_f64(), rate(local_copy));
    for (step, d) in [("publish: upload + manifest + pointer", upload), ("mirror: download + sha256 check", download)] {
        println!(
            "| {step} | {:.3} s | {:.0} | {:.2}× |",
            d.as_secs_f64(),
            rate(d),
            d.as_secs_f64() / local_copy.as_secs_f64()
        );
    }
    println!("| poll CURRENT, plain GET | {:.2} ms | | |", full_poll.as_secs_f64() * 1e3);
    println!(
        "| poll CURRENT, If-None-Match ({unchanged}/{} answered unchanged) | {:.2} ms | | |",
        args.polls,
        conditional_poll.as_secs_f64() * 1e3
    );
    println!("pruned to the newest version: deleted {deleted:?}");
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod cli_tests {
    use clap::CommandFactory;

    /// clap's own consistency checks on every argument and subcommand
    /// (duplicate flags, bad defaults, conflicting names) fail here, not at
    /// a user's first run.
    #[test]
    fn the_command_line_is_well_formed() {
        super::Args::command().debug_assert();
    }
}
