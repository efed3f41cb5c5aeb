//! Fuzz target `timecode`: see `busca_fuzz::timecode_text`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| busca_fuzz::timecode_text(data));
