//! `busca-eval`: measures a bundle the way the seed system was judged.
//!
//! - `busca-eval retrieval --bundle DIR --model DIR --queries log.csv`: recall
//!   at 1, 2, 5, 10, 20, 50 and MRR, at video and at shot level.
//! - `busca-eval segments --truth cuts.csv (--bundle DIR --level shots|scenes|transitions | --predicted cuts.csv)`:
//!   boundary precision, recall and F1 within a tolerance.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use busca_core::bundle::{OpenBundle, Verify, SCENES_FILE, SHOTS_FILE, TIMELINES_DIR, VIDEOS_FILE};
use busca_core::shot::{SceneRecord, ShotRecord, Timeline, VideoRecord};
use busca_eval::retrieval::VideoMatcher;
use busca_eval::segments::{boundaries_of, read_cut_list, score_boundaries, BoundaryScore};
use clap::{Parser, Subcommand, ValueEnum};

mod retrieval_cmd;

/// Evaluate a BuscaEscenas bundle.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Recall@K and MRR of logged queries (text or image) against a bundle.
    Retrieval(retrieval_cmd::RetrievalArgs),
    /// Precision, recall and F1 of shot or scene boundaries against a cut list.
    Segments(SegmentsArgs),
}

/// Which boundaries of a bundle to score.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Level {
    /// Semantic shot boundaries.
    Shots,
    /// Semantic scene boundaries.
    Scenes,
    /// Every cut, dissolve and fade the decoder found on the frames (what
    /// the shots snap to), from each video's timeline.
    Transitions,
}

#[derive(clap::Args, Debug)]
struct SegmentsArgs {
    /// Ground-truth cut list: CSV `video,time` (one boundary a row).
    #[arg(long)]
    truth: PathBuf,
    /// A collection directory (its CURRENT version) or a version directory to score.
    #[arg(long, conflicts_with = "predicted", required_unless_present = "predicted")]
    bundle: Option<PathBuf>,
    /// Which of the bundle's boundaries to score.
    #[arg(long, value_enum, default_value = "shots")]
    level: Level,
    /// Predictions as a cut list CSV instead of a bundle (e.g. PySceneDetect's).
    #[arg(long)]
    predicted: Option<PathBuf>,
    /// A predicted boundary this close to a true one (seconds) counts as a hit.
    #[arg(long, default_value_t = 0.5)]
    tolerance: f64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Retrieval(args) => retrieval_cmd::run(args),
        Command::Segments(args) => segments(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("busca-eval: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Opens a collection's current version, or a version directory.
pub(crate) fn open_bundle(path: &std::path::Path) -> Result<OpenBundle> {
    let bundle = if path.join(busca_core::bundle::MANIFEST_FILE).is_file() {
        OpenBundle::open_version_dir(path, Verify::SearchFiles)
    } else {
        OpenBundle::open_current(path, Verify::SearchFiles)
    };
    bundle.with_context(|| format!("opening bundle {}", path.display()))
}

fn predicted_from_bundle(bundle: &OpenBundle, level: Level) -> Result<(BTreeMap<String, Vec<u64>>, Vec<VideoRecord>)> {
    let videos: Vec<VideoRecord> = bundle.read_json(VIDEOS_FILE)?;
    let mut spans: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    match level {
        Level::Shots => {
            let shots: Vec<ShotRecord> = bundle.read_json(SHOTS_FILE)?;
            for s in shots {
                spans.entry(s.video_id).or_default().push((s.start_ms, s.end_ms));
            }
        }
        Level::Scenes => {
            let scenes: Vec<SceneRecord> = bundle.read_json(SCENES_FILE)?;
            for s in scenes {
                spans.entry(s.video_id).or_default().push((s.start_ms, s.end_ms));
            }
        }
        Level::Transitions => {
            for video in &videos {
                let timeline: Timeline = bundle.read_json(&format!("{TIMELINES_DIR}/{}.json", video.video_id))?;
                let Some(transitions) = timeline.transitions else {
                    bail!("{}: indexed without frame-level transition detection", video.video_id);
                };
                // Segments from 0 so that every transition is a boundary.
                let mut starts: Vec<u64> = transitions.iter().map(|t| t.t_ms).collect();
                starts.insert(0, 0);
                let s = spans.entry(video.video_id.clone()).or_default();
                s.extend(starts.iter().map(|&t| (t, t)));
            }
        }
    }
    let boundaries = spans.into_iter().map(|(v, s)| (v, boundaries_of(s))).collect();
    Ok((boundaries, videos))
}

fn segments(args: SegmentsArgs) -> Result<()> {
    let truth = read_cut_list(&args.truth)?;
    let tolerance_ms = (args.tolerance * 1000.0).round() as u64;
    let (predicted, matcher) = match (&args.bundle, &args.predicted) {
        (Some(dir), _) => {
            let bundle = open_bundle(dir)?;
            let (predicted, videos) = predicted_from_bundle(&bundle, args.level)?;
            (predicted, Some(VideoMatcher::new(&videos)))
        }
        (None, Some(csv)) => (read_cut_list(csv)?, None),
        (None, None) => bail!("give --bundle or --predicted"),
    };
    let mut rows = Vec::new();
    let mut total = BoundaryScore::default();
    for (video, cuts) in &truth {
        let key = match &matcher {
            Some(m) => m
                .resolve(video)
                .with_context(|| format!("{}: video {video:?} is not in the bundle", args.truth.display()))?
                .to_string(),
            None => video.clone(),
        };
        let Some(pred) = predicted.get(&key) else {
            bail!("no predictions for video {video:?}");
        };
        let score = score_boundaries(cuts, pred, tolerance_ms);
        total = total.add(score);
        rows.push((video.clone(), score));
    }
    if args.json {
        let json = serde_json::json!({
            "tolerance_s": args.tolerance,
            "videos": rows.iter().map(|(v, s)| serde_json::json!({
                "video": v, "score": s, "precision": s.precision(), "recall": s.recall(), "f1": s.f1()
            })).collect::<Vec<_>>(),
            "total": { "score": total, "precision": total.precision(), "recall": total.recall(), "f1": total.f1() },
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    println!("{:<24} {:>4} {:>4} {:>4} {:>9} {:>7} {:>6}", "video", "TP", "FP", "FN", "precision", "recall", "F1");
    for (video, s) in rows.iter().chain(std::iter::once(&("all (micro)".to_string(), total))) {
        println!(
            "{:<24} {:>4} {:>4} {:>4} {:>9.3} {:>7.3} {:>6.3}",
            video,
            s.true_positives,
            s.false_positives,
            s.false_negatives,
            s.precision(),
            s.recall(),
            s.f1()
        );
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
        super::Cli::command().debug_assert();
    }
}
