//! Fuzz target `usearch_file`: see `busca_fuzz::usearch`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| busca_fuzz::usearch(data));
