//! Evaluation of a BuscaEscenas bundle, the way the seed system was judged.
//!
//! - [`logs`]: documentalists' time-coded logs (a row: video, start, end,
//!   description or image) read from CSV, with errors that name the line.
//! - [`retrieval`]: where each logged span lands in the ranked results, at
//!   video level (any shot of the right video) and at shot level (a shot
//!   overlapping the logged span), summarised as recall at 1, 2, 5, 10, 20, 50
//!   and mean reciprocal rank.
//! - [`segments`]: precision, recall and F1 of predicted shot or scene
//!   boundaries against ground-truth cut lists, within a tolerance.
//!
//! Encoding queries needs the model and lives with the binary; everything here
//! is pure and tested on known ranks.
#![deny(missing_docs)]

pub mod logs;
pub mod retrieval;
pub mod segments;
