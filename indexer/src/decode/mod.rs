//! Video decoding and sampling with FFmpeg (through `ffmpeg-next`).
//!
//! Frames are chosen by presentation timestamp, not by frame count, so variable
//! frame rates and streams that do not start at zero are sampled correctly:
//! the sample grid is `k / fps` seconds from the stream's start, and a grid
//! point takes the first decoded frame whose timestamp reaches it (a frame held
//! across several grid points is taken once). The exact timestamp of every
//! sampled frame is kept. swscale converts each sampled frame straight to RGB at
//! the model's resolution (the model's fit: shortest side = `size` with
//! bicubic, or squashed to `size × size` with bilinear; display aspect ratio
//! honoured), and rotation metadata is applied afterwards on the small frame,
//! so nothing full-size is ever converted twice. That conversion runs on a
//! thread of its own ([`convert`]), beside the decoder.
//!
//! Most decoded frames are thrown away (2 samples a second from 25–60), so
//! when nothing needs every frame the decoder skips the frames no other frame
//! is predicted from ([`FrameDecode::NonReference`], about half the decoding
//! work of H.264 with B-frames) except those nearest a grid point, and a
//! sample is the decoded frame *nearest* its grid time (within half a frame)
//! rather than the first after it; [`FrameDecode::Key`] decodes key frames
//! only. Each video records the decode used and the largest distance
//! between a grid point and the sample nearest it ([`Sampling`]).
//!
//! Every decoded frame, sampled or not, also goes to the transition detector
//! (`crate::cuts`) as a 32 × 18 grid read straight from its planes, so that
//! shot boundaries can land on the frame where the picture changes; a frame
//! that jumps from the ones before it as a cut does is sampled too, off the
//! grid, so that a shot shorter than the sampling interval has a frame of its
//! own.

mod convert;

use std::path::{Path, PathBuf};
use std::sync::Once;

use busca_core::error::IoAt;
use busca_core::preprocess::Fit;
use busca_core::shot::{FrameDecode, Sampling, Transition};

use crate::cuts::{Grid, Plane, TransitionDetector, GRID_H, GRID_W};

use ffmpeg_next as ffmpeg;
use ffmpeg::format::Pixel;
use ffmpeg::media::Type as MediaType;
use ffmpeg::software::scaling::{Context as Scaler, Flags as ScaleFlags};

/// One sampled frame, resized as the model's fit says, rotated
/// for display.
#[derive(Debug, Clone)]
pub struct SampledFrame {
    /// Presentation timestamp from the start of the stream, in ms.
    pub t_ms: u64,
    /// Index of the frame among the video's displayed frames (from 0).
    pub frame: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Row-major RGB8, `width × height × 3` bytes.
    pub rgb: Vec<u8>,
}

/// What the container says about a video, known once it is opened.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    /// Duration in ms (container duration, or the last frame's timestamp).
    pub duration_ms: u64,
    /// Display width after rotation and sample aspect ratio.
    pub width: u32,
    /// Display height after rotation.
    pub height: u32,
    /// Clockwise rotation applied for display, in degrees (0, 90, 180, 270).
    pub rotation: u32,
    /// Codec name, for logs.
    pub codec: String,
    /// Displayed frames decoded.
    pub frames: u64,
    /// The frames decoded and how near the samples are to the grid.
    pub sampling: Sampling,
    /// Of the sampled frames, those taken between the regular samples
    /// because a cut starts on them.
    pub sampled_at_cuts: u64,
    /// Transitions found on the frames, when detection was asked for.
    pub transitions: Option<Vec<Transition>>,
}

/// How to sample a video.
#[derive(Debug, Clone, Copy)]
pub struct SampleOptions {
    /// Frames per second to sample.
    pub fps: f32,
    /// The model's image size: the shortest side of the sampled frames, or
    /// both sides for a squash.
    pub size: u32,
    /// How frames are brought to the model's size (the model manifest's).
    pub fit: Fit,
    /// FFmpeg decoder threads (0: one for frames up to SD, else one per core).
    pub decoder_threads: usize,
    /// Look for cuts, dissolves and fades on every decoded frame.
    pub detect_transitions: bool,
    /// With detection, also sample each frame that jumps like a cut (off
    /// the regular grid): more frames to convert and embed, one per cut.
    pub sample_at_cuts: bool,
    /// Which frames to decode.
    pub decode: DecodeChoice,
}

/// Which frames to decode: chosen per stream, or one mode for all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeChoice {
    /// [`FrameDecode::All`] when transitions are detected (shot boundaries
    /// on the frame need every frame) or when the sampling rate is more than
    /// half the stream's frame rate; [`FrameDecode::NonReference`] otherwise.
    Auto,
    /// This mode for every stream.
    Only(FrameDecode),
}

impl DecodeChoice {
    /// The mode for a stream of `frame_rate` frames per second.
    pub fn resolve(self, options: &SampleOptions, frame_rate: f64) -> FrameDecode {
        match self {
            DecodeChoice::Only(mode) => mode,
            DecodeChoice::Auto if options.detect_transitions => FrameDecode::All,
            DecodeChoice::Auto if frame_rate >= 2.0 * f64::from(options.fps) => FrameDecode::NonReference,
            DecodeChoice::Auto => FrameDecode::All,
        }
    }
}

/// Why a file could not be decoded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The file could not be read at all.
    #[error("cannot read {0}")]
    Io(#[source] IoAt),
    /// The file is empty.
    #[error("{path}: empty file (0 bytes)")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// FFmpeg does not recognise the container.
    #[error("{path}: not a readable media file ({reason})")]
    Open {
        /// The file.
        path: PathBuf,
        /// FFmpeg's reason.
        reason: String,
    },
    /// The container has no video stream (audio-only or not a video).
    #[error("{path}: no video stream (audio-only or not a video file)")]
    NoVideo {
        /// The file.
        path: PathBuf,
    },
    /// The video stream's codec cannot be opened.
    #[error("{path}: cannot open the {codec} decoder: {reason}")]
    Codec {
        /// The file.
        path: PathBuf,
        /// Codec name.
        codec: String,
        /// FFmpeg's reason.
        reason: String,
    },
    /// Decoding produced no frame at all.
    #[error("{path}: no frame could be decoded ({errors} packets failed{detail})")]
    NoFrames {
        /// The file.
        path: PathBuf,
        /// Number of packets the decoder rejected.
        errors: usize,
        /// Last decoder error, if any.
        detail: String,
    },
    /// Reading stopped before the end the container announces.
    #[error("{path}: truncated or corrupt: frames stop at {decoded_s:.1} s of {duration_s:.1} s ({reason})")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Timestamp of the last decoded frame.
        decoded_s: f64,
        /// Duration the container announces.
        duration_s: f64,
        /// What stopped the reading.
        reason: String,
    },
    /// Frames were to be skipped while transitions are detected on every frame.
    #[error("{path}: decoding {mode} frames skips frames, but frame transitions need every frame")]
    SkipWithTransitions {
        /// The file.
        path: PathBuf,
        /// The decode mode asked for.
        mode: &'static str,
    },
    /// The consumer of the frames asked to stop.
    #[error("{path}: stopped: {reason}")]
    Stopped {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

static FFMPEG_INIT: Once = Once::new();

/// Initialises FFmpeg once and silences its own logging: every problem is
/// reported by us, as one line naming the file.
pub fn init_ffmpeg() {
    FFMPEG_INIT.call_once(|| {
        let _ = ffmpeg::init();
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Fatal);
    });
}

/// Clockwise display rotation of a 3×3 display matrix (16.16 fixed point), as
/// FFmpeg's `av_display_rotation_get` and the ffmpeg CLI's autorotate compute
/// it, rounded to a multiple of 90°.
pub fn rotation_from_display_matrix(matrix: &[i32; 9]) -> u32 {
    let conv = |v: i32| f64::from(v) / 65536.0;
    let scale0 = conv(matrix[0]).hypot(conv(matrix[3]));
    let scale1 = conv(matrix[1]).hypot(conv(matrix[4]));
    if scale0 == 0.0 || scale1 == 0.0 {
        return 0;
    }
    // av_display_rotation_get returns the counter-clockwise angle; the CLI
    // negates it to get the clockwise rotation to apply.
    let ccw = -(conv(matrix[1]) / scale1).atan2(conv(matrix[0]) / scale0).to_degrees();
    let cw = -ccw;
    let quarter = (cw / 90.0).round() as i64;
    (quarter.rem_euclid(4) * 90) as u32
}

/// Rotates an RGB8 image clockwise by 90, 180 or 270 degrees.
pub fn rotate_rgb(width: u32, height: u32, rgb: &[u8], degrees: u32) -> (u32, u32, Vec<u8>) {
    let (w, h) = (width as usize, height as usize);
    let mut out = vec![0u8; rgb.len()];
    match degrees {
        90 => {
            // Source (x, y) goes to (h − 1 − y, x) in an h-wide image.
            for y in 0..h {
                for x in 0..w {
                    let s = (y * w + x) * 3;
                    let d = (x * h + (h - 1 - y)) * 3;
                    out[d..d + 3].copy_from_slice(&rgb[s..s + 3]);
                }
            }
            (height, width, out)
        }
        180 => {
            for (i, px) in rgb.chunks_exact(3).enumerate() {
                let d = (w * h - 1 - i) * 3;
                out[d..d + 3].copy_from_slice(px);
            }
            (width, height, out)
        }
        270 => {
            // Source (x, y) goes to (y, w − 1 − x) in an h-wide image.
            for y in 0..h {
                for x in 0..w {
                    let s = (y * w + x) * 3;
                    let d = ((w - 1 - x) * h + y) * 3;
                    out[d..d + 3].copy_from_slice(&rgb[s..s + 3]);
                }
            }
            (height, width, out)
        }
        _ => (width, height, rgb.to_vec()),
    }
}

/// Decodes `path`, sampling `options.fps` frames per second of presentation
/// time (and, with transition detection, the first frame of each likely cut
/// as well), and calls `on_frame` with each sampled frame in timestamp order.
/// `on_frame` may return an error message to stop early.
pub fn decode_sampled(
    path: &Path,
    options: SampleOptions,
    mut on_frame: impl FnMut(SampledFrame) -> Result<(), String>,
) -> Result<VideoInfo, DecodeError> {
    init_ffmpeg();
    let file_len = std::fs::metadata(path)
        .map_err(|e| DecodeError::Io(IoAt::at(path)(e)))?
        .len();
    if file_len == 0 {
        return Err(DecodeError::Empty {
            path: path.to_path_buf(),
        });
    }
    let mut input = ffmpeg::format::input(&path).map_err(|e| DecodeError::Open {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let stream = input
        .streams()
        .best(MediaType::Video)
        .filter(|s| !s.disposition().contains(ffmpeg::format::stream::Disposition::ATTACHED_PIC))
        .ok_or_else(|| DecodeError::NoVideo {
            path: path.to_path_buf(),
        })?;
    let stream_index = stream.index();
    let time_base = f64::from(stream.time_base());
    let start_pts = match stream.start_time() {
        ffmpeg::ffi::AV_NOPTS_VALUE => 0,
        start => start,
    };
    let rotation = stream
        .side_data()
        .find(|sd| sd.kind() == ffmpeg::codec::packet::side_data::Type::DisplayMatrix)
        .and_then(|sd| {
            let bytes = sd.data();
            (bytes.len() >= 36).then(|| {
                let m: [i32; 9] = std::array::from_fn(|i| {
                    i32::from_ne_bytes(bytes[i * 4..i * 4 + 4].try_into().expect("4 bytes"))
                });
                rotation_from_display_matrix(&m)
            })
        })
        .unwrap_or(0);
    let container_duration_ms = {
        let d = input.duration();
        if d > 0 {
            Some((d as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE) * 1000.0) as u64)
        } else if stream.duration() > 0 {
            Some((stream.duration() as f64 * time_base * 1000.0) as u64)
        } else {
            None
        }
    };
    let mut codec_ctx =
        ffmpeg::codec::context::Context::from_parameters(stream.parameters()).map_err(|e| DecodeError::Codec {
            path: path.to_path_buf(),
            codec: "video".into(),
            reason: e.to_string(),
        })?;
    let threads = match options.decoder_threads {
        // SAFETY: `codec_ctx` holds a valid context, filled from the stream's parameters.
        0 => unsafe { auto_decoder_threads((*codec_ctx.as_ptr()).width, (*codec_ctx.as_ptr()).height) },
        n => n,
    };
    codec_ctx.set_threading(ffmpeg::codec::threading::Config {
        kind: ffmpeg::codec::threading::Type::Frame,
        count: threads,
        ..Default::default()
    });
    let codec_name = codec_ctx.id().name().to_string();
    let mut decoder = codec_ctx.decoder().video().map_err(|e| DecodeError::Codec {
        path: path.to_path_buf(),
        codec: codec_name.clone(),
        reason: e.to_string(),
    })?;

    let frame_rate = [stream.avg_frame_rate(), stream.rate()]
        .into_iter()
        .map(f64::from)
        .find(|r| r.is_finite() && *r > 0.0)
        .unwrap_or(25.0);
    let mode = options.decode.resolve(&options, frame_rate);
    if mode != FrameDecode::All && options.detect_transitions {
        return Err(DecodeError::SkipWithTransitions { path: path.to_path_buf(), mode: mode.name() });
    }
    decoder.skip_frame(discard(mode));
    let mut sampler = Sampler::new(options, time_base, start_pts, rotation, mode, frame_rate);
    // Whether the decoder is set to decode every frame.
    let mut whole = mode == FrameDecode::All;
    // Presentation time of the latest packet read, in ms.
    let mut last_packet_ms = 0u64;
    if options.detect_transitions {
        sampler.detector = Some(TransitionDetector::new(frame_rate));
    }
    let mut packet = ffmpeg::Packet::empty();
    let mut decode_errors = 0usize;
    let mut last_error = String::new();
    let mut read_error: Option<String> = None;
    let mut stopped: Option<String> = None;
    // Sampled frames are converted to RGB on a thread of their own (see
    // `convert`) while this one reads and decodes.
    std::thread::scope(|scope| {
        let mut queue = convert::ConvertQueue::spawn(scope, options.fit, options.size, rotation);
        'read: loop {
            match packet.read(&mut input) {
                Ok(()) => {}
                Err(ffmpeg::Error::Eof) => break,
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => continue,
                Err(e) => {
                    read_error = Some(e.to_string());
                    break;
                }
            }
            if packet.stream() != stream_index {
                continue;
            }
            if let Some(pts) = packet.pts() {
                last_packet_ms = last_packet_ms.max(sampler.ms(pts).max(0.0).round() as u64);
            }
            if mode == FrameDecode::NonReference {
                // A non-reference frame nearest a grid point is decoded after all
                // (nothing depends on it, so any one can be): every sample is
                // then within half a frame of its grid point.
                let wanted = packet.pts().is_none_or(|pts| sampler.nearest_grid_point(pts));
                if wanted != whole {
                    whole = wanted;
                    decoder.skip_frame(discard(if wanted { FrameDecode::All } else { mode }));
                }
            }
            if let Err(e) = decoder.send_packet(&packet) {
                decode_errors += 1;
                last_error = e.to_string();
                continue;
            }
            if let Err(reason) = sampler.drain(&mut decoder, &mut queue, &mut on_frame) {
                stopped = Some(reason);
                break 'read;
            }
        }
        if stopped.is_none() {
            let _ = decoder.send_eof();
            if let Err(reason) = sampler.drain(&mut decoder, &mut queue, &mut on_frame) {
                stopped = Some(reason);
            }
        }
        if stopped.is_none() {
            if let Err(reason) = queue.finish(&mut on_frame) {
                stopped = Some(reason);
            }
        }
    });
    if let Some(reason) = stopped {
        return Err(DecodeError::Stopped {
            path: path.to_path_buf(),
            reason,
        });
    }
    if sampler.sampled == 0 {
        return Err(DecodeError::NoFrames {
            path: path.to_path_buf(),
            errors: decode_errors,
            detail: if last_error.is_empty() {
                read_error.map(|e| format!("; {e}")).unwrap_or_default()
            } else {
                format!("; {last_error}")
            },
        });
    }
    let last_ms = sampler.last_frame_ms.unwrap_or(0);
    // Grid points past the last sample (frames skipped at the end) are as
    // far from a sample as from the last one.
    sampler.close_grid(container_duration_ms.unwrap_or(0).max(last_ms + 1) as f64);
    if let Some(duration_ms) = container_duration_ms {
        // A file cut short keeps the duration its header announced; frames that
        // stop well before it mean the tail is missing. Two sampling periods of
        // slack cover the last frame's own display time. With frames skipped,
        // the last packet read counts too (key frames may be seconds apart).
        let slack_ms = (2000.0 / f64::from(options.fps)) as u64 + duration_ms / 20;
        let read_ms = if mode == FrameDecode::All { last_ms } else { last_ms.max(last_packet_ms) };
        if read_ms + slack_ms < duration_ms {
            return Err(DecodeError::Truncated {
                path: path.to_path_buf(),
                decoded_s: last_ms as f64 / 1000.0,
                duration_s: duration_ms as f64 / 1000.0,
                reason: read_error.unwrap_or_else(|| {
                    if decode_errors > 0 {
                        format!("{decode_errors} packets failed: {last_error}")
                    } else {
                        "data ends early".into()
                    }
                }),
            });
        }
    }
    if decode_errors > 0 {
        tracing::warn!("{}: {decode_errors} damaged packets skipped ({last_error})", path.display());
    }
    let (width, height) = sampler.display_dims.unwrap_or((0, 0));
    Ok(VideoInfo {
        duration_ms: container_duration_ms.unwrap_or(0).max(last_ms),
        width,
        height,
        rotation,
        codec: codec_name,
        frames: sampler.shown,
        sampling: Sampling { decode: mode, max_offset_ms: sampler.max_offset_ms.round() as u32 },
        sampled_at_cuts: sampler.at_cuts,
        transitions: sampler.detector.map(TransitionDetector::finish),
    })
}

/// FFmpeg's `skip_frame` setting for `mode`.
/// Frame threads for a decoder left to choose ([`SampleOptions::decoder_threads`]
/// 0). FFmpeg's own choice is one per core plus one, but frame threading
/// hands every frame between threads, which costs more than decoding a
/// small frame, and the sampled frames' conversion has a thread of its own
/// now. `busca-bench decode` on 2 cores, frames skipped: bikes.mp4
/// (640×272) 0.094 s on one thread, 0.118 s on two, 0.116 s on FFmpeg's
/// three; Big Buck Bunny (1280×720) 1.84 s, 1.33 s and 1.46 s. So frames up
/// to SD get one thread, larger ones one per core.
fn auto_decoder_threads(width: i32, height: i32) -> usize {
    const SMALL_FRAME_PIXELS: i64 = 854 * 480;
    if i64::from(width) * i64::from(height) <= SMALL_FRAME_PIXELS {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

fn discard(mode: FrameDecode) -> ffmpeg::Discard {
    match mode {
        FrameDecode::All => ffmpeg::Discard::Default,
        FrameDecode::NonReference => ffmpeg::Discard::NonReference,
        FrameDecode::Key => ffmpeg::Discard::NonKey,
    }
}

/// The decoded frame before the current one, kept while frames are skipped:
/// it may be nearer a grid point than the first frame past it.
#[derive(Clone, Copy)]
struct Previous {
    t_ms: f64,
    index: u64,
    sampled: bool,
}

/// The timestamp grid, the scaler and the reusable frames.
struct Sampler {
    options: SampleOptions,
    time_base: f64,
    start_pts: i64,
    rotation: u32,
    mode: FrameDecode,
    frame_rate: f64,
    next_target_ms: f64,
    period_ms: f64,
    sampled: usize,
    last_sample_ms: Option<f64>,
    /// The largest distance so far between a grid point and its nearest sample.
    max_offset_ms: f64,
    last_frame_ms: Option<u64>,
    decoded: ffmpeg::frame::Video,
    /// With frames skipped: the decoded frame before `decoded`.
    previous_frame: ffmpeg::frame::Video,
    previous: Option<Previous>,
    display_dims: Option<(u32, u32)>,
    /// Displayed frames so far.
    shown: u64,
    /// Frames sampled off the regular grid because a cut starts on them.
    at_cuts: u64,
    detector: Option<TransitionDetector>,
    /// For pixel formats the grid cannot read directly: a small YUV 4:4:4 copy.
    grid_scaler: Option<(ScalerKey, Scaler, ffmpeg::frame::Video)>,
}

#[derive(PartialEq, Eq, Clone, Copy)]
struct ScalerKey {
    format: Pixel,
    width: u32,
    height: u32,
    out_width: u32,
    out_height: u32,
}

impl Sampler {
    fn new(options: SampleOptions, time_base: f64, start_pts: i64, rotation: u32, mode: FrameDecode, frame_rate: f64) -> Self {
        Sampler {
            options,
            time_base,
            start_pts,
            rotation,
            mode,
            frame_rate,
            next_target_ms: 0.0,
            period_ms: 1000.0 / f64::from(options.fps),
            sampled: 0,
            last_sample_ms: None,
            max_offset_ms: 0.0,
            last_frame_ms: None,
            decoded: ffmpeg::frame::Video::empty(),
            previous_frame: ffmpeg::frame::Video::empty(),
            previous: None,
            display_dims: None,
            shown: 0,
            at_cuts: 0,
            detector: None,
            grid_scaler: None,
        }
    }

    /// Takes every frame the decoder has ready, hands the sampled ones to
    /// `queue`, and passes the ones converted so far to `on_frame`.
    fn drain(
        &mut self,
        decoder: &mut ffmpeg::decoder::Video,
        queue: &mut convert::ConvertQueue,
        on_frame: &mut impl FnMut(SampledFrame) -> Result<(), String>,
    ) -> Result<(), String> {
        while decoder.receive_frame(&mut self.decoded).is_ok() {
            let Some(pts) = self.decoded.timestamp().or(self.decoded.pts()) else {
                continue;
            };
            let t_ms = self.ms(pts);
            // Frames before the presentation start (edit lists, pre-roll) are not shown.
            if t_ms < -0.5 {
                continue;
            }
            let t_ms = t_ms.max(0.0);
            // With frames skipped, a frame's index comes from its timestamp.
            let frame = match self.mode {
                FrameDecode::All => self.shown,
                _ => (t_ms * self.frame_rate / 1000.0).round() as u64,
            };
            self.shown += 1;
            let mut at_cut = false;
            if let Some(detector) = self.detector.as_mut() {
                let grid = Self::grid(&self.decoded, &mut self.grid_scaler).map_err(|e| format!("swscale: {e}"))?;
                detector.push(t_ms.round() as u64, &grid);
                at_cut = self.options.sample_at_cuts && frame > 0 && detector.likely_cut();
            }
            self.last_frame_ms = Some(self.last_frame_ms.unwrap_or(0).max(t_ms.round() as u64));
            // The grid points this frame reaches, each sampled once. Half a
            // millisecond of tolerance absorbs time-base rounding.
            let mut sampled_now = false;
            while t_ms + 0.5 >= self.next_target_ms {
                let target = self.next_target_ms;
                // Frames were skipped: the previous decoded frame may be nearer.
                if let Some(prev) = self.previous.filter(|p| !p.sampled && target - p.t_ms < t_ms - target) {
                    self.cover(prev.t_ms, target);
                    self.previous = Some(Previous { sampled: true, ..prev });
                    self.display_dims.get_or_insert_with(|| convert::display_dims(&self.previous_frame, self.rotation));
                    queue.send(&self.previous_frame, prev.t_ms.round() as u64, prev.index)?;
                    self.sampled += 1;
                    continue;
                }
                self.cover(t_ms, t_ms + 0.5);
                sampled_now = true;
                break;
            }
            if !sampled_now && at_cut {
                self.at_cuts += 1;
                self.last_sample_ms = Some(t_ms);
            }
            if sampled_now || at_cut {
                self.display_dims.get_or_insert_with(|| convert::display_dims(&self.decoded, self.rotation));
                queue.send(&self.decoded, t_ms.round() as u64, frame)?;
                self.sampled += 1;
            }
            if self.mode != FrameDecode::All {
                // `decoded` becomes the previous frame; the next receive
                // releases the older one.
                std::mem::swap(&mut self.decoded, &mut self.previous_frame);
                self.previous = Some(Previous { t_ms, index: frame, sampled: sampled_now || at_cut });
            }
        }
        queue.deliver_ready(on_frame)
    }

    /// A timestamp of the stream, in ms from its start.
    fn ms(&self, pts: i64) -> f64 {
        (pts - self.start_pts) as f64 * self.time_base * 1000.0
    }

    /// Whether the frame at `pts` is the frame nearest a point of the grid.
    fn nearest_grid_point(&self, pts: i64) -> bool {
        let t_ms = self.ms(pts);
        let k = (t_ms / self.period_ms).round();
        (t_ms - k * self.period_ms).abs() <= 500.0 / self.frame_rate + 0.5
    }

    /// Records the grid points before `end_ms` that no sample reached.
    fn close_grid(&mut self, end_ms: f64) {
        let Some(last) = self.last_sample_ms else { return };
        while self.next_target_ms < end_ms {
            self.max_offset_ms = self.max_offset_ms.max(self.next_target_ms - last);
            self.next_target_ms += self.period_ms;
        }
    }

    /// Takes a sample at `sample_ms` for every grid point up to `through_ms`,
    /// recording how far each lies from the sample nearest it (this one or
    /// the one before).
    fn cover(&mut self, sample_ms: f64, through_ms: f64) {
        while self.next_target_ms <= through_ms {
            let target = self.next_target_ms;
            let behind = self.last_sample_ms.map_or(f64::INFINITY, |l| (target - l).abs());
            self.max_offset_ms = self.max_offset_ms.max((sample_ms - target).abs().min(behind));
            self.next_target_ms += self.period_ms;
        }
        self.last_sample_ms = Some(sample_ms);
    }

    /// The decoded frame's grid: read from its planes when they are 8-bit
    /// planar YUV or grey (nearly every video), else from a small copy.
    /// Rotation does not matter to the detector: every frame turns alike.
    fn grid(
        decoded: &ffmpeg::frame::Video,
        grid_scaler: &mut Option<(ScalerKey, Scaler, ffmpeg::frame::Video)>,
    ) -> Result<Grid, ffmpeg::Error> {
        fn plane(f: &ffmpeg::frame::Video, i: usize) -> Plane<'_> {
            Plane { data: f.data(i), stride: f.stride(i), width: f.plane_width(i) as usize, height: f.plane_height(i) as usize }
        }
        let frame = decoded;
        match frame.format() {
            Pixel::YUV420P | Pixel::YUVJ420P | Pixel::YUV422P | Pixel::YUVJ422P | Pixel::YUV444P
            | Pixel::YUVJ444P | Pixel::YUV440P | Pixel::YUVJ440P | Pixel::YUV411P | Pixel::YUV410P => {
                Ok(Grid::from_planes(plane(frame, 0), Some((plane(frame, 1), plane(frame, 2)))))
            }
            Pixel::GRAY8 => Ok(Grid::from_planes(plane(frame, 0), None)),
            format => {
                let key = ScalerKey {
                    format,
                    width: frame.width(),
                    height: frame.height(),
                    out_width: (GRID_W * 4) as u32,
                    out_height: (GRID_H * 4) as u32,
                };
                if grid_scaler.as_ref().is_none_or(|(k, _, _)| *k != key) {
                    let scaler = Scaler::get(
                        format,
                        key.width,
                        key.height,
                        Pixel::YUV444P,
                        key.out_width,
                        key.out_height,
                        ScaleFlags::AREA,
                    )?;
                    *grid_scaler = Some((key, scaler, ffmpeg::frame::Video::empty()));
                }
                let (_, scaler, small) = grid_scaler.as_mut().expect("grid scaler just set");
                scaler.run(decoded, small)?;
                Ok(Grid::from_planes(plane(small, 0), Some((plane(small, 1), plane(small, 2)))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matrix_rotation_matches_ffmpeg() {
        // A matrix whose av_display_rotation_get is −90 (ffprobe
        // "rotation=-90"): the ffmpeg CLI turns the picture 90° clockwise.
        let cw90 = [0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30];
        assert_eq!(rotation_from_display_matrix(&cw90), 90);
        let ccw90 = [0, -65536, 0, 65536, 0, 0, 0, 0, 1 << 30];
        assert_eq!(rotation_from_display_matrix(&ccw90), 270);
        let half = [-65536, 0, 0, 0, -65536, 0, 0, 0, 1 << 30];
        assert_eq!(rotation_from_display_matrix(&half), 180);
        let identity = [65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30];
        assert_eq!(rotation_from_display_matrix(&identity), 0);
    }

    #[test]
    fn rotate_moves_the_top_left_pixel() {
        // 2×1 image: red, green.
        let rgb = [255, 0, 0, 0, 255, 0];
        let (w, h, out) = rotate_rgb(2, 1, &rgb, 90);
        // Clockwise: red ends on top of a 1×2 image.
        assert_eq!((w, h), (1, 2));
        assert_eq!(&out, &[255, 0, 0, 0, 255, 0]);
        let (w, h, out) = rotate_rgb(2, 1, &rgb, 270);
        assert_eq!((w, h), (1, 2));
        assert_eq!(&out, &[0, 255, 0, 255, 0, 0]);
        let (_, _, out) = rotate_rgb(2, 1, &rgb, 180);
        assert_eq!(&out, &[0, 255, 0, 255, 0, 0]);
    }
}
