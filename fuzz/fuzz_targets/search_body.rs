//! Fuzz target `search_body`: see `busca_fuzz::search_body`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| busca_fuzz::search_body(data));
