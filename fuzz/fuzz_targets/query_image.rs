//! Fuzz target `query_image`: see `busca_fuzz::query_image`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| busca_fuzz::query_image(data));
