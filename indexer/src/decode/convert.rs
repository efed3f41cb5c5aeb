//! Sampled frames to RGB at the model's size, on a thread of their own.
//!
//! swscale's resize and RGB conversion of the sampled frames took a quarter
//! of the decode thread's time (`perf record` of `busca-bench decode` on
//! bikes.mp4), time in which the decoder waited. Here it overlaps the
//! decoding of the frames that follow: the decode thread hands over a new
//! reference to each sampled frame (FFmpeg's frames are reference-counted,
//! so nothing is copied) and gets the RGB frames back in the order it sent
//! them. At most [`IN_FLIGHT`] frames wait for the converter, so memory stays
//! bounded when converting is the slower side.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::Scope;

use busca_core::preprocess::{Filter, Fit};
use ffmpeg_next as ffmpeg;
use ffmpeg::format::Pixel;
use ffmpeg::software::scaling::{Context as Scaler, Flags as ScaleFlags};

use super::{rotate_rgb, SampledFrame, ScalerKey};

/// Sampled frames handed over and not yet converted, at most.
const IN_FLIGHT: usize = 4;

/// A decoded frame's display size: sample aspect ratio applied, then rotation.
pub(super) fn display_dims(decoded: &ffmpeg::frame::Video, rotation: u32) -> (u32, u32) {
    let (w, h) = (decoded.width(), decoded.height());
    let sar = decoded.aspect_ratio();
    let display_w = if sar.numerator() > 0 && sar.denominator() > 0 {
        ((f64::from(w) * f64::from(sar)).round() as u32).max(1)
    } else {
        w
    };
    if rotation == 90 || rotation == 270 {
        (h, display_w)
    } else {
        (display_w, h)
    }
}

/// Resizes (the model's fit), converts to RGB and rotates one frame at a time,
/// keeping its scaler and output frame between frames.
struct Converter {
    fit: Fit,
    size: u32,
    rotation: u32,
    scaler: Option<(ScalerKey, Scaler)>,
    rgb: ffmpeg::frame::Video,
}

impl Converter {
    fn convert(&mut self, decoded: &ffmpeg::frame::Video, t_ms: u64, index: u64) -> Result<SampledFrame, ffmpeg::Error> {
        let (disp_w, disp_h) = display_dims(decoded, self.rotation);
        let (rw, rh) = self.fit.resized_dims(disp_w, disp_h, self.size);
        // Scale the coded frame to the resized size before rotating it.
        let quarter_turn = self.rotation == 90 || self.rotation == 270;
        let (out_width, out_height) = if quarter_turn { (rh, rw) } else { (rw, rh) };
        let key = ScalerKey {
            format: decoded.format(),
            width: decoded.width(),
            height: decoded.height(),
            out_width,
            out_height,
        };
        if self.scaler.as_ref().is_none_or(|(k, _)| *k != key) {
            let flags = match self.fit.filter() {
                Filter::Bicubic => ScaleFlags::BICUBIC,
                Filter::Bilinear => ScaleFlags::BILINEAR,
            };
            let scaler = Scaler::get(key.format, key.width, key.height, Pixel::RGB24, out_width, out_height, flags)?;
            self.scaler = Some((key, scaler));
        }
        let (_, scaler) = self.scaler.as_mut().expect("scaler just set");
        scaler.run(decoded, &mut self.rgb)?;
        let stride = self.rgb.stride(0);
        let data = self.rgb.data(0);
        let row = out_width as usize * 3;
        let mut rgb = Vec::with_capacity(row * out_height as usize);
        for y in 0..out_height as usize {
            rgb.extend_from_slice(&data[y * stride..y * stride + row]);
        }
        let (width, height, rgb) = if self.rotation == 0 {
            (out_width, out_height, rgb)
        } else {
            rotate_rgb(out_width, out_height, &rgb, self.rotation)
        };
        Ok(SampledFrame { t_ms, frame: index, width, height, rgb })
    }
}

/// A sampled frame on its way to the converter.
struct Job {
    frame: ffmpeg::frame::Video,
    t_ms: u64,
    index: u64,
}

/// The decode thread's ends of the converter thread: frames go in, RGB
/// frames (or the converter's error) come out in the same order.
pub(super) struct ConvertQueue {
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Result<SampledFrame, String>>,
    /// Frames sent whose result has not been passed on yet.
    pending: usize,
}

impl ConvertQueue {
    /// Starts the converter thread in `scope` (it ends when the queue is
    /// finished or dropped).
    pub(super) fn spawn<'scope>(scope: &'scope Scope<'scope, '_>, fit: Fit, size: u32, rotation: u32) -> Self {
        let (jobs, inbox) = mpsc::sync_channel::<Job>(IN_FLIGHT);
        let (outbox, done) = mpsc::channel();
        scope.spawn(move || {
            let mut converter = Converter { fit, size, rotation, scaler: None, rgb: ffmpeg::frame::Video::empty() };
            for job in inbox {
                let result = converter.convert(&job.frame, job.t_ms, job.index).map_err(|e| format!("swscale: {e}"));
                let failed = result.is_err();
                if outbox.send(result).is_err() || failed {
                    break;
                }
            }
        });
        ConvertQueue { jobs: Some(jobs), done, pending: 0 }
    }

    /// Hands `frame` (a new reference to it) to the converter; blocks while
    /// [`IN_FLIGHT`] frames wait.
    pub(super) fn send(&mut self, frame: &ffmpeg::frame::Video, t_ms: u64, index: u64) -> Result<(), String> {
        let mut copy = ffmpeg::frame::Video::empty();
        // SAFETY: both point to valid frames; `av_frame_ref` takes a new
        // reference to `frame`'s buffers (or copies them if they are not
        // reference-counted) and its properties into the empty `copy`.
        let rc = unsafe { ffmpeg::ffi::av_frame_ref(copy.as_mut_ptr(), frame.as_ptr()) };
        if rc < 0 {
            return Err(format!("keeping a decoded frame: {}", ffmpeg::Error::from(rc)));
        }
        let jobs = self.jobs.as_ref().expect("send after finish");
        if jobs.send(Job { frame: copy, t_ms, index }).is_err() {
            // The converter stopped on an error, which waits in `done` after
            // the frames it converted before it.
            while let Ok(result) = self.done.recv() {
                result?;
            }
            return Err("the frame converter stopped".into());
        }
        self.pending += 1;
        Ok(())
    }

    /// Passes every frame already converted to `on_frame`, in order.
    pub(super) fn deliver_ready(&mut self, on_frame: &mut impl FnMut(SampledFrame) -> Result<(), String>) -> Result<(), String> {
        while self.pending > 0 {
            match self.done.try_recv() {
                Ok(result) => {
                    self.pending -= 1;
                    on_frame(result?)?;
                }
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// Waits for the rest and passes it to `on_frame`; the thread then ends.
    pub(super) fn finish(&mut self, on_frame: &mut impl FnMut(SampledFrame) -> Result<(), String>) -> Result<(), String> {
        self.jobs = None;
        while self.pending > 0 {
            self.next(on_frame)?;
        }
        Ok(())
    }

    /// Waits for the next result and passes it on.
    fn next(&mut self, on_frame: &mut impl FnMut(SampledFrame) -> Result<(), String>) -> Result<(), String> {
        let result = self.done.recv().map_err(|_| "the frame converter stopped".to_string())?;
        self.pending = self.pending.saturating_sub(1);
        on_frame(result?)
    }
}
