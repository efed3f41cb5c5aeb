//! Cranelift's incremental compilation cache, in memory: each function's
//! machine code keyed by its IR, kept for the process's life.
//!
//! busca-serve compiles the same code again and again with different data:
//! the snapshot of each new bundle version, and before each snapshot the
//! probe that finds where its memory image will lie (`image_align`). Only the
//! first compile of the component's code pays for code generation; later
//! ones find every function here and only translate the WebAssembly and
//! lay out the data. Entries stop being added past [`MAX_BYTES`] (a new
//! component version then compiles as without the cache). One cache serves
//! every engine of the process ([`shared`]): keys cover the target and its
//! flags, so engines configured alike share entries and others do not
//! collide.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The process's cache.
pub fn shared() -> Arc<CompileCache> {
    static SHARED: OnceLock<Arc<CompileCache>> = OnceLock::new();
    SHARED.get_or_init(Arc::default).clone()
}

/// The most bytes of keys and code kept. One version of the query
/// component's code took 23.4 MB (`compile_cache_bytes` in busca-serve's
/// start-up log, 12-02), so this holds about ten.
pub const MAX_BYTES: usize = 256 << 20;

/// The store wasmtime's compiler reads and fills (`Config::enable_incremental_compilation`).
#[derive(Debug, Default)]
pub struct CompileCache {
    entries: Mutex<Entries>,
    hits: AtomicUsize,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<Vec<u8>, Vec<u8>>,
    bytes: usize,
}

impl CompileCache {
    /// How many functions were found here instead of compiled.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }

    /// Bytes of keys and code held.
    pub fn bytes(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.bytes)
    }
}

impl wasmtime::CacheStore for CompileCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let entries = self.entries.lock().ok()?;
        let code = entries.map.get(key)?.clone();
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(Cow::Owned(code))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let Ok(mut entries) = self.entries.lock() else { return false };
        let size = key.len() + value.len();
        if entries.bytes + size > MAX_BYTES {
            return false;
        }
        if let Some(old) = entries.map.insert(key.to_vec(), value) {
            entries.bytes -= key.len() + old.len();
        }
        entries.bytes += size;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::CacheStore;

    #[test]
    fn entries_are_kept_and_replaced_within_the_bound() {
        let cache = CompileCache::default();
        assert!(cache.get(b"f").is_none());
        assert!(cache.insert(b"f", vec![1, 2, 3]));
        assert_eq!(cache.get(b"f").as_deref(), Some(&[1u8, 2, 3][..]));
        assert!(cache.insert(b"f", vec![4]));
        assert_eq!(cache.get(b"f").as_deref(), Some(&[4u8][..]));
        assert_eq!(cache.bytes(), 2);
        // Past the bound nothing more is added, and what is there stays.
        assert!(!cache.insert(b"g", vec![0; MAX_BYTES]));
        assert!(cache.get(b"g").is_none());
        assert_eq!(cache.get(b"f").as_deref(), Some(&[4u8][..]));
    }

    #[test]
    fn a_second_compile_of_the_same_code_hits_the_cache() {
        let cache = Arc::new(CompileCache::default());
        let mut config = wasmtime::Config::new();
        config.enable_incremental_compilation(cache.clone()).unwrap();
        let engine = wasmtime::Engine::new(&config).unwrap();
        let wat = |data: &str| {
            format!(
                r#"(module (memory 1)
                    (func (export "sum") (param i32) (result i32)
                        local.get 0 i32.const 7 i32.mul i32.const 3 i32.add)
                    (data (i32.const 16) "{data}"))"#
            )
        };
        engine.precompile_module(wat("one").as_bytes()).unwrap();
        let (entries, hits) = (cache.entries.lock().unwrap().map.len(), cache.hits());
        assert!(entries > 0, "the first compile fills the cache");
        // Other data, the same function: found, not generated again.
        engine.precompile_module(wat("two").as_bytes()).unwrap();
        assert!(cache.hits() > hits, "the second compile found nothing");
        let added = cache.entries.lock().unwrap().map.len() - entries;
        assert!(added < entries, "the second compile added {added} of {entries} entries again");
    }
}
