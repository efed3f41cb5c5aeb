//! The time of an image query's own steps, in whichever build runs it:
//! decoding the image (`image_input::decode_rgb`) and preprocessing it
//! (`ClipPreprocess::pixel_values`, OpenAI CLIP's 224-pixel fit), each timed
//! over many runs. Built natively it times core as busca-host-bench's native
//! side runs it; built for wasm32-wasip2 with simd128 and run in the stock
//! wasmtime CLI it times the component's code alone, with or without the
//! epoch checks busca-serve compiles in to bound a request's time.
//!
//! ```text
//! ffmpeg -f lavfi -i testsrc2=size=1280x720:rate=1 -frames:v 1 -q:v 4 /tmp/q.jpg
//! cargo run --release -p busca-core --bin bench_preprocess -- /tmp/q.jpg
//! RUSTFLAGS="-C target-feature=+simd128" cargo build --release -p busca-core \
//!     --bin bench_preprocess --target wasm32-wasip2
//! wasmtime run --dir /tmp $CARGO_TARGET_DIR/wasm32-wasip2/release/bench_preprocess.wasm /tmp/q.jpg
//! wasmtime run -W epoch-interruption=y -W timeout=100s --dir /tmp ...   # with epoch checks
//! ```
//!
//! Prints the median and the best of each step; the best is the steadier
//! figure on a shared machine. The resize is also timed one pass at a time
//! (`resample_window` with one side unchanged): the horizontal pass over
//! the center crop's columns, then the vertical pass of its result.

use std::time::Instant;

use busca_core::image_input::decode_rgb;
use busca_core::preprocess::{resample_window, Filter, Window};
use busca_core::ClipPreprocess;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: bench_preprocess IMAGE [RUNS]")?;
    let runs: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(150).max(1);
    let bytes = std::fs::read(&path).map_err(|e| format!("reading {path}: {e}"))?;
    let preprocess = ClipPreprocess::OPENAI_224;
    let (mut decode, mut resample) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    let (mut horizontal, mut vertical) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        let t = Instant::now();
        let image = decode_rgb(&bytes, u64::MAX).map_err(|e| format!("{path}: {e}"))?;
        decode.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let tensor = preprocess.pixel_values(image.width, image.height, &image.rgb)?;
        resample.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(tensor);
        let (w, h, size) = (image.width, image.height, preprocess.size);
        let (rw, rh) = preprocess.resized_dims(w, h);
        let crop = Window { x: (rw - size) / 2, y: 0, width: size.min(rw), height: h };
        let t = Instant::now();
        let rows = resample_window(w, h, &image.rgb, rw, h, Filter::Bicubic, crop);
        horizontal.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let all = Window { x: 0, y: 0, width: crop.width, height: rh };
        std::hint::black_box(resample_window(crop.width, h, &rows, crop.width, rh, Filter::Bicubic, all));
        vertical.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!("{path} ({} bytes), {runs} runs", bytes.len());
    for (step, times) in
        [("decode", &mut decode), ("preprocess", &mut resample), ("horizontal", &mut horizontal), ("vertical", &mut vertical)]
    {
        times.sort_by(f64::total_cmp);
        println!("{step:>10}: p50 {:.2} ms, best {:.2} ms", times[times.len() / 2], times[0]);
    }
    Ok(())
}
