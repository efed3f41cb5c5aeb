//! Fuzz target `bundle_manifest`: see `busca_fuzz::bundle_manifest`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| busca_fuzz::bundle_manifest(data));
