//! Fuzz target `model_manifest`: see `busca_fuzz::model_manifest`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| busca_fuzz::model_manifest(data));
