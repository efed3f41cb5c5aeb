//! The vectors and HNSW graph of a bundle's shots, searched in pure Rust: an
//! exact scan or a graph walk over rows read from the bundle's usearch file
//! by [`crate::usearch_file`].
//!
//! [`ShotIndex`] holds the shot vectors (f32, i8, or the 16-bit fixed point
//! an f16 index is held as: [`vector::fixed16`]) and the graph. It
//! scans exactly while the collection is small (a scan of a few thousand rows
//! costs less than walking a graph, and is exact) and walks the graph above
//! [`EXACT_SCAN_MAX_ROWS`]; filtered queries always scan, because a graph walk
//! under a selective filter misses results. The distance kernels and the
//! bounded heap are [`crate::vector`]'s.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use crate::usearch_file::{HnswGraph, Metric, StoredVectors, UsearchFile, FREE_KEY};
use crate::vector::fixed16::{self, Fixed16Query, Fixed16Rows, NotFinite};
use crate::vector::{self, dot_i8, Scored, TopK};

/// Collections with at most this many shots are searched by exact scan when no
/// method is forced. Chosen from `bench_search` (numbers in the query
/// component's README): at 20k × 768 an exact f32 scan took ~9 ms natively and
/// the graph walk (ef 64) ~0.7 ms at recall@10 = 1.0, so above ~10k shots the
/// scan's exactness is not worth its latency.
pub const EXACT_SCAN_MAX_ROWS: usize = 10_000;

/// Why a usearch file cannot be searched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShotIndexError {
    /// Only cosine and inner-product indexes are searched.
    #[error("metric {0} is not supported; index with cos")]
    UnsupportedMetric(&'static str),
    /// Two slots hold the same key.
    #[error("key {0} appears twice")]
    DuplicateKey(u64),
    /// A row cannot be held as 16-bit fixed point.
    #[error("slot {}: its vector holds a non-finite component", .0.row)]
    NotFinite(#[from] NotFinite),
}

/// Rows of an index [`ShotIndex::scan_order`] asks a filter about to guess
/// how much of the index it admits.
pub const SCAN_ORDER_SAMPLE: usize = 64;

/// In which order an exact scan under a filter scores and filters rows
/// ([`ShotIndex::scan_order`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanOrder {
    /// Ask the filter about every row, score the rows it admits.
    FilterFirst,
    /// Score every row, ask the filter about the rows the top k would take.
    ScoreFirst,
}

/// How to search; in a [`crate::search::Found`], how the search was done (never `Auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Exact scan up to [`EXACT_SCAN_MAX_ROWS`] rows or under a filter, graph above.
    Auto,
    /// Score every row.
    Exact,
    /// Walk the HNSW graph (filters are applied to what the walk finds).
    Hnsw,
}

/// Shot vectors in memory.
#[derive(Debug, Clone, PartialEq)]
pub enum VectorStore {
    /// Row-major f32.
    F32(Vec<f32>),
    /// The rows of an f16 index as 16-bit fixed point ([`Fixed16Rows`]):
    /// half the memory of f32, scores within ~1e-4 of the f16 rows', the
    /// same in the component and natively.
    Fixed16(Fixed16Rows),
    /// Row-major i8 ([`crate::vector::quantize_i8`]): a quarter of the memory. Scored
    /// asymmetrically, the query (as i16, [`fixed16::quantize_query`], far
    /// finer than the rows) against each row divided by that row's norm, so
    /// a score is the cosine with the stored direction rather than
    /// usearch's i8·i8 product of two quantized vectors.
    I8 {
        /// The rows.
        rows: Vec<i8>,
        /// `1 / ‖row‖` of each row (0 for an all-zero row).
        inv_norms: Vec<f32>,
        /// The largest row norm, in levels (the query's scale keeps every
        /// score's integer sum in i32 under it).
        max_norm: f64,
    },
}

/// A query as the kernel of an index's element type reads it.
enum Query<'q> {
    /// f32 rows: the query as given.
    Plain(&'q [f32]),
    /// Integer rows (16-bit fixed point, i8): the query quantized for them.
    Fixed16(Fixed16Query),
}

/// The vectors and graph of a bundle's shots, rows in usearch slot order.
#[derive(Debug, Clone)]
pub struct ShotIndex {
    dim: usize,
    store: VectorStore,
    keys: Vec<u64>,
    graph: HnswGraph,
    row_of_key: HashMap<u64, u32>,
    expansion_search: usize,
}

/// A max-heap entry for the graph walk's candidate queue (best score first).
#[derive(Clone, Copy, PartialEq)]
struct Best(f32, u32);
impl Eq for Best {}
impl Ord for Best {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then_with(|| other.1.cmp(&self.1))
    }
}
impl PartialOrd for Best {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl ShotIndex {
    /// Takes the vectors and graph of a parsed usearch file. Only similarity
    /// metrics whose score is a dot product of normalised vectors are accepted
    /// (`cos`, `ip`); f32 rows are normalised here so that scores are cosines.
    pub fn from_usearch(file: UsearchFile, expansion_search: usize) -> Result<Self, ShotIndexError> {
        if file.metric == Metric::L2Squared {
            return Err(ShotIndexError::UnsupportedMetric(file.metric.name()));
        }
        let dim = file.dimensions;
        let store = match file.vectors {
            StoredVectors::F32(mut v) => {
                v.chunks_exact_mut(dim).for_each(|row| {
                    vector::normalize(row);
                });
                VectorStore::F32(v)
            }
            StoredVectors::F16(v) => VectorStore::Fixed16(Fixed16Rows::from_f16(v, dim)?),
            StoredVectors::I8(rows) => {
                let norms: Vec<f32> = rows
                    .chunks_exact(dim)
                    .map(|row| row.iter().map(|&x| f32::from(x) * f32::from(x)).sum::<f32>().sqrt())
                    .collect();
                let max_norm = f64::from(norms.iter().fold(0.0f32, |m, &n| m.max(n)));
                let inv_norms = norms.iter().map(|&n| if n > 0.0 { 1.0 / n } else { 0.0 }).collect();
                VectorStore::I8 { rows, inv_norms, max_norm }
            }
        };
        let mut row_of_key = HashMap::with_capacity(file.keys.len());
        for (row, &key) in file.keys.iter().enumerate() {
            if key != FREE_KEY && row_of_key.insert(key, row as u32).is_some() {
                return Err(ShotIndexError::DuplicateKey(key));
            }
        }
        Ok(ShotIndex {
            dim,
            store,
            keys: file.keys,
            graph: file.graph,
            row_of_key,
            expansion_search: expansion_search.max(1),
        })
    }

    /// The same index with its vectors held as 16-bit fixed point (`true`)
    /// or f32 (what an f16 index's rows are, to within a level); i8 rows
    /// stay as they are. For benches comparing the kernels on one index.
    pub fn with_fixed16(mut self, fixed16: bool) -> Result<Self, ShotIndexError> {
        self.store = match (self.store, fixed16) {
            (VectorStore::F32(v), true) => VectorStore::Fixed16(Fixed16Rows::from_f32(&v, self.dim)?),
            (VectorStore::Fixed16(rows), false) => VectorStore::F32(rows.into_f32()),
            (store, _) => store,
        };
        Ok(self)
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of rows (deleted ones included).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Number of keys present (deleted rows not counted).
    pub fn key_count(&self) -> usize {
        self.row_of_key.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// `f32`, `fixed16` or `i8`.
    pub fn storage_name(&self) -> &'static str {
        match self.store {
            VectorStore::F32(_) => "f32",
            VectorStore::Fixed16(_) => "fixed16",
            VectorStore::I8 { .. } => "i8",
        }
    }

    /// The row holding `key`.
    pub fn row_of(&self, key: u64) -> Option<usize> {
        self.row_of_key.get(&key).map(|r| *r as usize)
    }

    /// The key of `row`.
    pub fn key(&self, row: usize) -> u64 {
        self.keys[row]
    }

    /// The vector of `row`, as f32.
    pub fn vector(&self, row: usize) -> Vec<f32> {
        let range = row * self.dim..(row + 1) * self.dim;
        match &self.store {
            VectorStore::F32(v) => v[range].to_vec(),
            VectorStore::Fixed16(rows) => rows.to_f32(row),
            VectorStore::I8 { rows, inv_norms, .. } => rows[range].iter().map(|&x| f32::from(x) * inv_norms[row]).collect(),
        }
    }

    /// `query` as this index's kernel reads it, made once per search.
    fn prepare<'q>(&self, query: &'q [f32]) -> Query<'q> {
        match &self.store {
            VectorStore::Fixed16(rows) => Query::Fixed16(rows.query(query)),
            VectorStore::I8 { max_norm, .. } => Query::Fixed16(fixed16::quantize_query(query, *max_norm, 1.0)),
            VectorStore::F32(_) => Query::Plain(query),
        }
    }

    /// Reads one byte of every cache line of `row`, so that the rows a graph
    /// step is about to score are fetched from memory together rather than
    /// one after another as each is scored (WebAssembly has no prefetch).
    #[inline]
    fn touch(&self, row: usize) {
        let range = row * self.dim..(row + 1) * self.dim;
        let bytes: &[u8] = match &self.store {
            VectorStore::F32(v) => bytemuck::cast_slice(&v[range]),
            VectorStore::Fixed16(rows) => bytemuck::cast_slice(rows.row(row)),
            VectorStore::I8 { rows, .. } => bytemuck::cast_slice(&rows[range]),
        };
        // Eight lines per loop iteration: in the component every loop
        // iteration also checks the epoch, which cost more than the read.
        let (p, n) = (bytes.as_ptr(), bytes.len());
        let mut i = 0;
        while i + 512 <= n {
            for line in [0, 64, 128, 192, 256, 320, 384, 448] {
                // SAFETY: i + line < i + 512 ≤ n; a volatile read is not optimised away.
                unsafe { std::ptr::read_volatile(p.add(i + line)) };
            }
            i += 512;
        }
        while i < n {
            // SAFETY: i < n.
            unsafe { std::ptr::read_volatile(p.add(i)) };
            i += 64;
        }
    }

    /// Dot product of `query` with `row`.
    #[inline]
    fn score(&self, query: &Query<'_>, row: usize) -> f32 {
        let range = row * self.dim..(row + 1) * self.dim;
        match (&self.store, query) {
            (VectorStore::Fixed16(rows), Query::Fixed16(q)) => rows.score(q, row),
            (VectorStore::F32(v), Query::Plain(q)) => vector::dot(q, &v[range]),
            (VectorStore::I8 { rows, inv_norms, .. }, Query::Fixed16(q)) => {
                dot_i8(q.values(), &rows[range]) as f32 * q.unit() * inv_norms[row]
            }
            _ => unreachable!("a query is prepared by the index it scores against"),
        }
    }

    /// The method a search with `method` uses: `Auto` scans collections of
    /// at most [`EXACT_SCAN_MAX_ROWS`] rows and every filtered search (a graph
    /// walk under a selective filter misses results), and walks the graph
    /// otherwise.
    pub fn method_for(&self, method: Method, filtered: bool) -> Method {
        match method {
            Method::Auto if filtered || self.len() <= EXACT_SCAN_MAX_ROWS => Method::Exact,
            Method::Auto => Method::Hnsw,
            forced => forced,
        }
    }

    /// The `k` best rows for `query` (normalised, `dim` long), best first.
    /// `admit` filters rows (None: all); rows below `min_score` are dropped.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        min_score: Option<f32>,
        method: Method,
        admit: Option<&dyn Fn(usize) -> bool>,
    ) -> Vec<Scored> {
        assert_eq!(query.len(), self.dim, "query dimension");
        let use_graph = self.method_for(method, admit.is_some()) == Method::Hnsw;
        let live = |row: usize| self.keys[row] != FREE_KEY && admit.is_none_or(|f| f(row));
        let prepared = self.prepare(query);
        if use_graph {
            return self.hnsw(&prepared, k, min_score, &live);
        }
        let mut best = TopK::new(k, min_score);
        if admit.is_some() && self.scan_order(&live) == ScanOrder::ScoreFirst {
            for row in 0..self.len() {
                let score = self.score(&prepared, row);
                if best.takes(score) && live(row) {
                    best.push(Scored { row, score });
                }
            }
            return best.into_sorted_vec();
        }
        match &self.store {
            VectorStore::F32(v) => vector::top_k(query, v, self.dim, k, min_score, live),
            VectorStore::Fixed16(_) | VectorStore::I8 { .. } => {
                for row in (0..self.len()).filter(|&row| live(row)) {
                    best.push(Scored { row, score: self.score(&prepared, row) });
                }
                best.into_sorted_vec()
            }
        }
    }

    /// Whether an exact scan under `live` should ask the filter about every
    /// row before scoring it, or score every row and ask only about the
    /// rows the top k would take. A filter costs a call and a read of the
    /// shot table per row (in the component an indirect call, too), and the
    /// score is computed for nearly every row anyway when the filter admits
    /// nearly every row (a time window over most of an archive): then
    /// scoring first leaves about k·ln(n/k) questions instead of n. A
    /// selective filter (one video) is asked first, sparing the scores of
    /// the rows it refuses. Decided from [`SCAN_ORDER_SAMPLE`] rows spread
    /// over the index; the answer is the same either way, since a row the
    /// top k would not take changes nothing when offered.
    pub fn scan_order(&self, live: &dyn Fn(usize) -> bool) -> ScanOrder {
        let n = self.len();
        let sample = n.min(SCAN_ORDER_SAMPLE);
        if sample == 0 {
            return ScanOrder::FilterFirst;
        }
        let admitted = (0..sample).filter(|&i| live(i * n / sample)).count();
        // At least 15 of 16: the rows scored in vain cost less than the
        // filter calls saved (a 768-d score is some ten filter calls).
        if admitted * 16 >= sample * 15 {
            ScanOrder::ScoreFirst
        } else {
            ScanOrder::FilterFirst
        }
    }

    /// HNSW search as usearch does it: greedy descent through the upper
    /// levels from the entry point, then a best-first beam of width
    /// `max(expansion_search, k)` on level 0.
    fn hnsw(&self, query: &Query<'_>, k: usize, min_score: Option<f32>, live: &dyn Fn(usize) -> bool) -> Vec<Scored> {
        let g = &self.graph;
        if g.is_empty() || k == 0 {
            return Vec::new();
        }
        let mut current = g.entry_slot;
        let mut current_score = self.score(query, current as usize);
        for level in (1..=g.max_level).rev() {
            loop {
                let mut moved = false;
                for &n in g.neighbours(current, level) {
                    let s = self.score(query, n as usize);
                    if s > current_score {
                        (current, current_score, moved) = (n, s, true);
                    }
                }
                if !moved {
                    break;
                }
            }
        }
        let ef = self.expansion_search.max(k);
        let mut visited = vec![0u64; g.len().div_ceil(64)];
        let seen = |visited: &[u64], slot: u32| visited[slot as usize / 64] & (1u64 << (slot % 64)) != 0;
        let visit = |visited: &mut [u64], slot: u32| {
            let new = !seen(visited, slot);
            visited[slot as usize / 64] |= 1u64 << (slot % 64);
            new
        };
        visit(&mut visited, current);
        let mut candidates = BinaryHeap::from([Best(current_score, current)]);
        // Min-heap by score (Scored's order): the worst of the ef best on top.
        let mut found: BinaryHeap<Scored> = BinaryHeap::from([Scored {
            row: current as usize,
            score: current_score,
        }]);
        while let Some(Best(score, slot)) = candidates.pop() {
            if found.len() >= ef && found.peek().is_some_and(|worst| score < worst.score) {
                break;
            }
            let neighbours = g.neighbours(slot, 0);
            for &n in neighbours {
                if !seen(&visited, n) {
                    self.touch(n as usize);
                }
            }
            for &n in neighbours {
                if !visit(&mut visited, n) {
                    continue;
                }
                let s = self.score(query, n as usize);
                if found.len() < ef || found.peek().is_some_and(|worst| s > worst.score) {
                    candidates.push(Best(s, n));
                    found.push(Scored { row: n as usize, score: s });
                    if found.len() > ef {
                        found.pop();
                    }
                }
            }
        }
        let mut out: Vec<Scored> = found
            .into_sorted_vec()
            .into_iter()
            .filter(|s| live(s.row) && min_score.is_none_or(|m| s.score >= m))
            .collect();
        out.truncate(k);
        out
    }
}
