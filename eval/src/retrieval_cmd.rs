//! The `retrieval` subcommand: encodes each logged query with the bundle's
//! model (the indexer's native encoders, the core tokenizer and preprocessing:
//! the same tensors the component makes) and ranks the bundle's shots with the
//! core search code the component runs.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use busca_core::image_input::decode_rgb;
use busca_core::query::{Limits, SearchFilter};
use busca_core::search::Collection;
use busca_core::shot_index::Method;
use busca_core::ModelManifest;
use busca_eval::logs::{read_logs, QueryInput};
use busca_eval::retrieval::{metrics, ranks, Ranks, VideoMatcher, RECALL_AT};
use busca_onnx::{init_runtime, ImageEncoder, SessionOptions, TextEncoder};
use serde::Serialize;

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
    /// Language of the log's text queries (`es`, `en`): the first text model
    /// of the manifest trained for it encodes them (else the default), as
    /// the component does for a search with `lang`.
    #[arg(long)]
    pub lang: Option<String>,
    /// The text model (a text tower id of the manifest) that encodes the
    /// log's text queries, whatever `--lang` says.
    #[arg(long)]
    pub text_model: Option<String>,
    /// Print JSON (summary and per-query ranks) instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct QueryRow {
    line: usize,
    query: String,
    video: String,
    start_ms: u64,
    end_ms: u64,
    ranks: Ranks,
}

/// Runs the retrieval evaluation.
pub fn run(args: RetrievalArgs) -> Result<()> {
    let logs = read_logs(&args.queries)?;
    if logs.is_empty() {
        bail!("{} has no queries", args.queries.display());
    }
    let bundle = crate::open_bundle(&args.bundle)?;
    let model = ModelManifest::load(&args.model)?;
    if model.model_id != bundle.manifest.model.model_id {
        bail!(
            "{} was built with model {}, but --model {} is {}",
            args.bundle.display(),
            bundle.manifest.model.model_id,
            args.model.display(),
            model.model_id
        );
    }
    if let Some(lang) = args.lang.as_deref().filter(|l| !busca_core::query::is_language_tag(l)) {
        bail!("--lang {lang:?} is not a language code such as es, en or es-ES");
    }
    let tower = model.text_tower(args.text_model.as_deref(), args.lang.as_deref())?;
    let collection = Collection::load(bundle).context("loading the bundle for search")?;
    let matcher = VideoMatcher::new(&collection.videos);
    init_runtime(None, "busca-eval")?;
    let mut text_encoder = None;
    let mut image_encoder = None;
    let k = *RECALL_AT.last().expect("cut-offs");
    let mut rows = Vec::with_capacity(logs.len());
    for log in &logs {
        let at = || format!("{}:{}", args.queries.display(), log.line);
        let video_id = matcher
            .resolve(&log.video)
            .with_context(|| format!("{}: video {:?} is not in the bundle", at(), log.video))?;
        let (label, query) = match &log.query {
            QueryInput::Text(text) => {
                let encoder = match &mut text_encoder {
                    Some(e) => e,
                    None => text_encoder.insert(TextEncoder::load_tower(&args.model, &model, tower)?),
                };
                (text.clone(), encoder.encode(text)?)
            }
            QueryInput::Image(path) => {
                let bytes = std::fs::read(path).with_context(|| format!("{}: reading {}", at(), path.display()))?;
                let image = decode_rgb(&bytes, Limits::DEFAULT.max_image_pixels)
                    .with_context(|| format!("{}: {}", at(), path.display()))?;
                let pixels = model.preprocess().pixel_values(image.width, image.height, &image.rgb)?;
                let encoder = match &mut image_encoder {
                    Some(e) => e,
                    None => image_encoder.insert(ImageEncoder::load(&args.model, &model, SessionOptions::cpu(0))?),
                };
                (format!("[image] {}", path.display()), encoder.encode(&pixels, 1)?)
            }
        };
        let hits = collection.search(&query, k, &SearchFilter::default(), Method::Exact, &[]).hits;
        let shots: Vec<_> = hits.into_iter().map(|h| h.shot).collect();
        rows.push(QueryRow {
            line: log.line,
            query: label,
            video: video_id.to_string(),
            start_ms: log.start_ms,
            end_ms: log.end_ms,
            ranks: ranks(&shots, video_id, log.start_ms, log.end_ms),
        });
    }
    let video = metrics(&rows.iter().map(|r| r.ranks.video).collect::<Vec<_>>());
    let shot = metrics(&rows.iter().map(|r| r.ranks.shot).collect::<Vec<_>>());
    if args.json {
        let json = serde_json::json!({
            "queries": rows.len(), "lang": args.lang, "text_model": tower.id,
            "video_level": video, "shot_level": shot, "per_query": rows,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    let rank = |r: Option<usize>| r.map_or_else(|| format!(">{k}"), |r| r.to_string());
    println!(
        "text queries: language {}, text model {} ({})",
        args.lang.as_deref().unwrap_or("not given"),
        tower.id,
        tower.languages.join(", ")
    );
    println!("{:>5}  {:>10}  {:>9}  query", "line", "video rank", "shot rank");
    for r in &rows {
        println!("{:>5}  {:>10}  {:>9}  {}", r.line, rank(r.ranks.video), rank(r.ranks.shot), r.query);
    }
    println!();
    let header: Vec<String> = RECALL_AT.iter().map(|k| format!("R@{k}")).collect();
    println!("{:<12} {}  {:>6}", "level", header.iter().map(|h| format!("{h:>6}")).collect::<String>(), "MRR");
    for (name, m) in [("video", &video), ("shot", &shot)] {
        let cells: String = RECALL_AT.iter().map(|k| format!("{:>5.1}%", 100.0 * m.recall_at[k])).collect::<Vec<_>>().join(" ");
        println!("{name:<12} {cells}  {:>6.3}", m.mrr);
    }
    Ok(())
}
