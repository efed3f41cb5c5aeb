//! `busca-eval` end to end on generated videos and the tiny colour models,
//! where every expected rank is known by construction.

use std::path::{Path, PathBuf};
use std::process::Command;

use busca_indexer::{AnalysisParams, Device, IndexConfig};

fn tiny() -> PathBuf {
    busca_core::model::test_model_dir()
}

fn ort_lib() -> Option<PathBuf> {
    std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from)
}

fn hex(colour: &str) -> String {
    let manifest = busca_core::ModelManifest::load(&tiny()).unwrap();
    let [r, g, b] = manifest.colours.unwrap()[colour];
    format!("0x{r:02X}{g:02X}{b:02X}")
}

fn ffmpeg(args: &[&str]) {
    let status = Command::new("ffmpeg").args(["-v", "error", "-y"]).args(args).status().expect("ffmpeg CLI");
    assert!(status.success(), "ffmpeg {args:?}");
}

/// Two 3 s solid segments with a hard cut.
fn two_colours(path: &Path, first: &str, second: &str) {
    let src = |c: &str| format!("color=c={}:s=160x120:r=25:d=3", hex(c));
    ffmpeg(&[
        "-f", "lavfi", "-i", &src(first), "-f", "lavfi", "-i", &src(second),
        "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", path.to_str().unwrap(),
    ]);
}

/// Indexes reds.mp4 (red | green) and blues.mp4 (blue | yellow); returns the collection dir.
fn bundle(dir: &Path) -> PathBuf {
    let videos = dir.join("videos");
    std::fs::create_dir_all(&videos).unwrap();
    two_colours(&videos.join("reds.mp4"), "red", "green");
    two_colours(&videos.join("blues.mp4"), "blue", "yellow");
    ffmpeg(&["-f", "lavfi", "-i", &format!("color=c={}:s=64x48", hex("blue")), "-frames:v", "1",
        dir.join("blue.png").to_str().unwrap()]);
    let out = dir.join("bundles");
    let summary = busca_indexer::run(&IndexConfig {
        inputs: vec![videos],
        list_files: Vec::new(),
        collection: "eval".into(),
        out: out.clone().into(),
        s3: Default::default(),
        model_dir: tiny(),
        device: Device::Cpu,
        batch: 8,
        decoders: 1,
        decoder_threads: 1,
        encoder_threads: 1,
        ort_lib: ort_lib(),
        analysis: AnalysisParams::defaults(2.0),
        quantization: busca_core::usearch_file::ScalarKind::F16,
        progress: false,
        shard: None,
    })
    .unwrap();
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
    out.join("eval")
}

fn eval(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_busca-eval")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn recall_and_mrr_match_the_ranks_known_by_construction() {
    let tmp = tempfile::tempdir().unwrap();
    let collection = bundle(tmp.path());
    let log = tmp.path().join("log.csv");
    // Every rank is known: one shot per colour; "red red yellow" scores the red
    // shot 0.89 and the yellow one 0.45, so for the logged yellow span in
    // blues.mp4 both the video and the shot come second.
    std::fs::write(
        &log,
        "video,start,end,query,image\n\
         reds.mp4,00:00:00,00:00:03,a red scene,\n\
         reds,3,6,green,\n\
         blues,3,6,yellow,\n\
         blues,0,3,,blue.png\n\
         blues,3.5,5,red red yellow,\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = eval(&[
        "retrieval", "--bundle", collection.to_str().unwrap(), "--model", tiny().to_str().unwrap(),
        "--queries", log.to_str().unwrap(), "--json",
    ]);
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let ranks: Vec<(u64, u64)> = report["per_query"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["ranks"]["video"].as_u64().unwrap(), q["ranks"]["shot"].as_u64().unwrap()))
        .collect();
    assert_eq!(ranks, vec![(1, 1), (1, 1), (1, 1), (1, 1), (2, 2)]);
    for level in ["video_level", "shot_level"] {
        let m = &report[level];
        assert_eq!(m["recall_at"]["1"], 0.8, "{level}");
        assert_eq!(m["recall_at"]["2"], 1.0, "{level}");
        assert!((m["mrr"].as_f64().unwrap() - 0.9).abs() < 1e-9, "{level}");
    }
}

/// The same clips logged in Spanish and in English score the same: each log
/// is encoded by the text model of its language.
#[test]
fn spanish_and_english_logs_of_the_same_clips_are_comparable() {
    let tmp = tempfile::tempdir().unwrap();
    let collection = bundle(tmp.path());
    let run = |name: &str, rows: &str, extra: &[&str]| {
        let log = tmp.path().join(name);
        std::fs::write(&log, format!("video,start,end,query\n{rows}")).unwrap();
        let model = tiny();
        let mut args = vec!["retrieval", "--bundle", collection.to_str().unwrap(), "--model", model.to_str().unwrap(),
            "--queries", log.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        let (ok, stdout, stderr) = eval(&args);
        assert!(ok, "{stderr}");
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()
    };
    let en = run("en.csv", "reds,0,3,a red scene\nreds,3,6,green\nblues,3,6,yellow\n", &["--lang", "en"]);
    let es = run("es.csv", "reds,0,3,una escena roja\nreds,3,6,verde\nblues,3,6,amarillo\n", &["--lang", "es"]);
    assert_eq!(es["text_model"], "multilingual");
    assert_eq!(es["lang"], "es");
    let model = busca_core::ModelManifest::load(&tiny()).unwrap();
    assert_eq!(en["text_model"], model.text_tower(None, Some("en")).unwrap().id.as_str());
    for level in ["video_level", "shot_level"] {
        assert_eq!(es[level], en[level], "{level}");
        assert_eq!(es[level]["recall_at"]["1"], 1.0, "{level}");
    }
    // Spanish through a text model that does not speak it, when there is one.
    let en_tower = model.text_tower(None, Some("en")).unwrap();
    if !en_tower.speaks("es") {
        // "amarilla" is no CLIP BPE colour word: every shot ties, and the
        // yellow shot is not the first of the bundle.
        let forced = run("es-clip.csv", "blues,3,6,una pared amarilla\n", &["--text-model", &en_tower.id]);
        assert_eq!(forced["text_model"], en_tower.id.as_str());
        assert!(forced["shot_level"]["mrr"].as_f64().unwrap() < 1.0, "{forced}");
    }
    let log = tmp.path().join("es.csv");
    let (ok, _, stderr) = eval(&["retrieval", "--bundle", collection.to_str().unwrap(), "--model", tiny().to_str().unwrap(),
        "--queries", log.to_str().unwrap(), "--text-model", "siglip"]);
    assert!(!ok && stderr.contains("no text model \"siglip\""), "{stderr}");
}

#[test]
fn bad_logs_and_unknown_videos_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let collection = bundle(tmp.path());
    let log = tmp.path().join("log.csv");
    let run = |text: &str| {
        std::fs::write(&log, text).unwrap();
        eval(&["retrieval", "--bundle", collection.to_str().unwrap(), "--model", tiny().to_str().unwrap(),
            "--queries", log.to_str().unwrap()])
    };
    let (ok, _, stderr) = run("video,start,end,query\nreds,0,3,red\nreds,later,3,red\n");
    assert!(!ok && stderr.contains("log.csv:3: start \"later\""), "{stderr}");
    let (ok, _, stderr) = run("video,start,end,query\nDG90602601.mp4,0,3,lab worker mixing dyes\n");
    assert!(!ok && stderr.contains("log.csv:2: video \"DG90602601.mp4\" is not in the bundle"), "{stderr}");
}

#[test]
fn segments_of_the_bundle_are_scored_against_a_cut_list() {
    let tmp = tempfile::tempdir().unwrap();
    let collection = bundle(tmp.path());
    let cuts = tmp.path().join("cuts.csv");
    // True cuts at 3 s in both; a wrong extra truth at 1 s in reds is missed.
    std::fs::write(&cuts, "video,time\nreds,1.0\nreds,3.0\nblues.mp4,00:00:03\n").unwrap();
    let (ok, stdout, stderr) = eval(&[
        "segments", "--truth", cuts.to_str().unwrap(), "--bundle", collection.to_str().unwrap(), "--json",
    ]);
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let total = &report["total"]["score"];
    assert_eq!((total["true_positives"].as_u64(), total["false_positives"].as_u64(), total["false_negatives"].as_u64()),
        (Some(2), Some(0), Some(1)));
    // The transitions the decoder found, scored alone to the frame (40 ms).
    std::fs::write(&cuts, "video,time\nreds,3.0\nblues,3.0\n").unwrap();
    let (ok, stdout, stderr) = eval(&[
        "segments", "--truth", cuts.to_str().unwrap(), "--bundle", collection.to_str().unwrap(),
        "--level", "transitions", "--tolerance", "0.04", "--json",
    ]);
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["total"]["f1"], 1.0, "{stdout}");
}
