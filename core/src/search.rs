//! Search over a loaded bundle, in pure Rust: what the edge component answers
//! queries with, and what native tools can use to check it.
//!
//! [`ShotIndex`] holds the shot vectors (f32, or f16 to halve memory) and the
//! HNSW graph read from the bundle's usearch file by [`crate::usearch_file`].
//! It scans exactly while the collection is small (a scan of a few thousand
//! rows costs less than walking a graph, and is exact) and walks the graph above
//! [`EXACT_SCAN_MAX_ROWS`]; filtered queries always scan, because a graph walk
//! under a selective filter misses results. [`Collection`] is a whole bundle
//! version in memory: tables, index, lookups, and the query composition
//! (text/image fusion, "more like this", relevance feedback, filters).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::path::Path;

use half::f16;

use crate::bundle::{self, BundleError, MapPoint, OpenBundle, Verify};
use crate::fusion;
use crate::query::{QueryError, SearchFilter, SearchHit};
use crate::shot::{SceneRecord, ShotId, ShotRecord, VideoRecord};
use crate::usearch_file::{HnswGraph, Metric, StoredVectors, UsearchFile, UsearchFileError, FREE_KEY};
use crate::vector::{self, dot_f16, dot_i8, Scored, TopK};

/// Collections with at most this many shots are searched by exact scan when no
/// method is forced. Chosen from `bench_search` (numbers in the query
/// component's README): at 20k × 768 an exact f32 scan took ~9 ms natively and
/// the graph walk (ef 64) ~0.7 ms at recall@10 = 1.0, so above ~10k shots the
/// scan's exactness is not worth its latency.
pub const EXACT_SCAN_MAX_ROWS: usize = 10_000;

/// How to search; in a [`Found`], how the search was done (never `Auto`).
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
    /// Row-major f16: half the memory, scores within ~1e-3.
    F16(Vec<f16>),
    /// Row-major i8 ([`crate::vector::quantize_i8`]): a quarter of the memory. Scored
    /// asymmetrically, the f32 query against each dequantized row divided by
    /// that row's norm, so a score is the cosine with the stored direction
    /// rather than usearch's i8·i8 product of two quantized vectors.
    I8 {
        /// The rows.
        rows: Vec<i8>,
        /// `1 / ‖row‖` of each row (0 for an all-zero row).
        inv_norms: Vec<f32>,
    },
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
    pub fn from_usearch(file: UsearchFile, expansion_search: usize) -> Result<Self, String> {
        if file.metric == Metric::L2Squared {
            return Err("metric l2sq is not supported; index with cos".into());
        }
        let dim = file.dimensions;
        let store = match file.vectors {
            StoredVectors::F32(mut v) => {
                v.chunks_exact_mut(dim).for_each(|row| {
                    vector::normalize(row);
                });
                VectorStore::F32(v)
            }
            StoredVectors::F16(v) => VectorStore::F16(v),
            StoredVectors::I8(rows) => {
                let inv_norms = rows
                    .chunks_exact(dim)
                    .map(|row| {
                        let norm = row.iter().map(|&x| f32::from(x) * f32::from(x)).sum::<f32>().sqrt();
                        if norm > 0.0 { 1.0 / norm } else { 0.0 }
                    })
                    .collect();
                VectorStore::I8 { rows, inv_norms }
            }
        };
        let mut row_of_key = HashMap::with_capacity(file.keys.len());
        for (row, &key) in file.keys.iter().enumerate() {
            if key != FREE_KEY && row_of_key.insert(key, row as u32).is_some() {
                return Err(format!("key {key} appears twice"));
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

    /// The same index with its vectors stored as f16 (`true`) or f32.
    pub fn with_f16(mut self, f16_storage: bool) -> Self {
        self.store = match (self.store, f16_storage) {
            (VectorStore::F32(v), true) => VectorStore::F16(v.iter().map(|x| f16::from_f32(*x)).collect()),
            (VectorStore::F16(v), false) => VectorStore::F32(v.iter().map(|x| x.to_f32()).collect()),
            (store, _) => store,
        };
        self
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of rows (deleted ones included).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// `f32` or `f16`.
    pub fn storage_name(&self) -> &'static str {
        match self.store {
            VectorStore::F32(_) => "f32",
            VectorStore::F16(_) => "f16",
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
            VectorStore::F16(v) => v[range].iter().map(|x| x.to_f32()).collect(),
            VectorStore::I8 { rows, inv_norms } => rows[range].iter().map(|&x| f32::from(x) * inv_norms[row]).collect(),
        }
    }

    /// Dot product of `query` with `row`.
    #[inline]
    pub fn score(&self, query: &[f32], row: usize) -> f32 {
        let range = row * self.dim..(row + 1) * self.dim;
        match &self.store {
            VectorStore::F32(v) => vector::dot(query, &v[range]),
            VectorStore::F16(v) => dot_f16(query, &v[range]),
            VectorStore::I8 { rows, inv_norms } => dot_i8(query, &rows[range]) * inv_norms[row],
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
        if use_graph {
            return self.hnsw(query, k, min_score, &live);
        }
        match &self.store {
            VectorStore::F32(v) => vector::top_k(query, v, self.dim, k, min_score, live),
            VectorStore::F16(_) | VectorStore::I8 { .. } => {
                let mut best = TopK::new(k, min_score);
                for row in (0..self.len()).filter(|&row| live(row)) {
                    best.push(Scored { row, score: self.score(query, row) });
                }
                best.into_sorted_vec()
            }
        }
    }

    /// HNSW search as usearch does it: greedy descent through the upper
    /// levels from the entry point, then a best-first beam of width
    /// `max(expansion_search, k)` on level 0.
    fn hnsw(&self, query: &[f32], k: usize, min_score: Option<f32>, live: &dyn Fn(usize) -> bool) -> Vec<Scored> {
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
        let mut visit = |slot: u32| {
            let (word, bit) = (slot as usize / 64, 1u64 << (slot % 64));
            let seen = visited[word] & bit != 0;
            visited[word] |= bit;
            !seen
        };
        visit(current);
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
            for &n in g.neighbours(slot, 0) {
                if !visit(n) {
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

/// Why a collection could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CollectionError {
    /// The bundle (manifest, a table, a checksum) is unusable.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The usearch file is unusable.
    #[error(transparent)]
    Index(#[from] UsearchFileError),
    /// The files disagree with each other or with the manifest.
    #[error("bundle {dir} is inconsistent: {reason}; re-publish it")]
    Inconsistent {
        /// The version directory.
        dir: std::path::PathBuf,
        /// What disagrees.
        reason: String,
    },
}

/// A bundle version loaded for searching.
#[derive(Debug, Clone)]
pub struct Collection {
    /// The opened bundle (directory and checked manifest).
    pub bundle: OpenBundle,
    /// Shots, in the bundle's order.
    pub shots: Vec<ShotRecord>,
    /// Scenes.
    pub scenes: Vec<SceneRecord>,
    /// Videos.
    pub videos: Vec<VideoRecord>,
    /// Semantic map points (empty when the bundle has none).
    pub map: Vec<MapPoint>,
    /// Vectors and graph.
    pub index: ShotIndex,
    shot_at: HashMap<ShotId, u32>,
    row_shot: Vec<u32>,
    scene_at: HashMap<u64, u32>,
    video_at: HashMap<String, u32>,
}

impl Collection {
    /// Loads the current version of the collection in `collection_dir`,
    /// checking format and the checksums of the files search needs.
    pub fn load_current(collection_dir: &Path) -> Result<Self, CollectionError> {
        Self::load(OpenBundle::open_current(collection_dir, Verify::SearchFiles)?)
    }

    /// Loads an opened bundle.
    pub fn load(bundle: OpenBundle) -> Result<Self, CollectionError> {
        let m = &bundle.manifest;
        let inconsistent = |reason: String| CollectionError::Inconsistent {
            dir: bundle.dir.clone(),
            reason,
        };
        let shots: Vec<ShotRecord> = bundle.read_json(bundle::SHOTS_FILE)?;
        let scenes: Vec<SceneRecord> = bundle.read_json(bundle::SCENES_FILE)?;
        let videos: Vec<VideoRecord> = bundle.read_json(bundle::VIDEOS_FILE)?;
        let map: Vec<MapPoint> = if m.files.contains_key(bundle::MAP_FILE) {
            bundle.read_json(bundle::MAP_FILE)?
        } else {
            Vec::new()
        };
        let index_bytes = bundle.read_checked(&m.index.file)?;
        let file = UsearchFile::parse_bytes(&index_bytes).map_err(|e| match e {
            UsearchFileError::Format { reason, .. } => UsearchFileError::Format {
                path: bundle.dir.join(&m.index.file),
                reason,
            },
            other => other,
        })?;
        drop(index_bytes);
        if file.dimensions != m.index.dimensions || file.dimensions != m.model.embedding_dim {
            return Err(inconsistent(format!(
                "index has {} dimensions, manifest index {} and model {}",
                file.dimensions, m.index.dimensions, m.model.embedding_dim
            )));
        }
        if file.vectors.kind_name() != m.index.quantization || file.metric.name() != m.index.metric {
            return Err(inconsistent(format!(
                "index is {}/{}, manifest says {}/{}",
                file.metric.name(),
                file.vectors.kind_name(),
                m.index.metric,
                m.index.quantization
            )));
        }
        let index = ShotIndex::from_usearch(file, m.index.expansion_search).map_err(inconsistent)?;
        // Collections that are scanned keep f32 rows: the f16 scan pays ~1.7x
        // for the conversion (bench_search) and the extra memory is small here.
        let index = if index.len() <= EXACT_SCAN_MAX_ROWS { index.with_f16(false) } else { index };
        let mut shot_at = HashMap::with_capacity(shots.len());
        let mut row_shot = vec![u32::MAX; index.len()];
        for (pos, shot) in shots.iter().enumerate() {
            if shot_at.insert(shot.shot_id, pos as u32).is_some() {
                return Err(inconsistent(format!("shot {} appears twice in shots.json", shot.shot_id)));
            }
            let row = index
                .row_of(shot.shot_id)
                .ok_or_else(|| inconsistent(format!("shot {} has no vector in the index", shot.shot_id)))?;
            row_shot[row] = pos as u32;
        }
        if shot_at.len() != index.row_of_key.len() {
            return Err(inconsistent(format!(
                "{} shots but {} vectors in the index",
                shot_at.len(),
                index.row_of_key.len()
            )));
        }
        let scene_at = scenes.iter().enumerate().map(|(i, s)| (s.scene_id, i as u32)).collect();
        let video_at = videos.iter().enumerate().map(|(i, v)| (v.video_id.clone(), i as u32)).collect();
        Ok(Collection {
            bundle,
            shots,
            scenes,
            videos,
            map,
            index,
            shot_at,
            row_shot,
            scene_at,
            video_at,
        })
    }

    /// Collection name.
    pub fn name(&self) -> &str {
        &self.bundle.manifest.collection
    }

    /// Bundle version name.
    pub fn version(&self) -> &str {
        &self.bundle.manifest.version
    }

    /// A shot by id.
    pub fn shot(&self, id: ShotId) -> Option<&ShotRecord> {
        self.shot_at.get(&id).map(|p| &self.shots[*p as usize])
    }

    /// A scene by id.
    pub fn scene(&self, id: u64) -> Option<&SceneRecord> {
        self.scene_at.get(&id).map(|p| &self.scenes[*p as usize])
    }

    /// A video by id.
    pub fn video(&self, id: &str) -> Option<&VideoRecord> {
        self.video_at.get(id).map(|p| &self.videos[*p as usize])
    }

    /// A shot's embedding.
    pub fn shot_vector(&self, id: ShotId) -> Option<Vec<f32>> {
        self.index.row_of(id).map(|row| self.index.vector(row))
    }

    fn shot_vector_or_404(&self, id: ShotId, role: &str) -> Result<Vec<f32>, QueryError> {
        self.shot_vector(id).ok_or_else(|| {
            QueryError::not_found(format!("{role} shot {id} is not in collection {}", self.name()))
        })
    }

    /// Composes the query vector from its parts: text and image fused by
    /// `image_weight`, then "more like this" (the shot's own vector, fused
    /// evenly with what came before), then relevance feedback (Rocchio). Shot
    /// ids must belong to this collection (404 naming the field otherwise).
    pub fn compose(&self, parts: &QueryParts<'_>) -> Result<Vec<f32>, QueryError> {
        let mut query = if parts.text.is_some() || parts.image.is_some() {
            Some(fusion::fuse(parts.text, parts.image, parts.image_weight).ok_or_else(|| {
                QueryError::invalid("the text and image embeddings cancel out; change the query")
            })?)
        } else {
            None
        };
        if let Some(id) = parts.like_shot {
            let like = self.shot_vector_or_404(id, "like_shot")?;
            query = match query {
                None => Some(like),
                Some(q) => fusion::fuse(Some(&q), Some(&like), 0.5),
            };
        }
        if !parts.positive.is_empty() || !parts.negative.is_empty() {
            let positive = parts.positive.iter().map(|id| self.shot_vector_or_404(*id, "positive")).collect::<Result<Vec<_>, _>>()?;
            let negative = parts.negative.iter().map(|id| self.shot_vector_or_404(*id, "negative")).collect::<Result<Vec<_>, _>>()?;
            let pos: Vec<&[f32]> = positive.iter().map(Vec::as_slice).collect();
            let neg: Vec<&[f32]> = negative.iter().map(Vec::as_slice).collect();
            query = fusion::rocchio(query.as_deref(), &pos, &neg);
        }
        query.ok_or_else(|| QueryError::invalid("the query has no direction (opposite inputs cancelled out); change it"))
    }

    /// Searches with a ready query vector: the best `k` shots that `filter`
    /// admits, leaving out `exclude` (e.g. a shot among its own neighbours),
    /// and the method used (`method`, or for [`Method::Auto`] what
    /// [`ShotIndex::method_for`] picks).
    pub fn search(&self, query: &[f32], k: usize, filter: &SearchFilter, method: Method, exclude: &[ShotId]) -> Found {
        let has_filter = !filter.video_ids.is_empty() || filter.start_ms.is_some() || filter.end_ms.is_some();
        let admit_row = |row: usize| {
            let pos = self.row_shot[row];
            pos != u32::MAX
                && !exclude.contains(&self.shots[pos as usize].shot_id)
                && filter.admits(&self.shots[pos as usize])
        };
        let method = self.index.method_for(method, has_filter);
        let scored = if has_filter {
            self.index.search(query, k, filter.min_score, method, Some(&admit_row))
        } else {
            // No filter: keep the graph walk available, drop exclusions after it.
            let mut scored = self.index.search(query, k + exclude.len(), filter.min_score, method, None);
            scored.retain(|s| admit_row(s.row));
            scored
        };
        let hits = scored
            .into_iter()
            .take(k)
            .map(|s| SearchHit::new(self.shots[self.row_shot[s.row] as usize].clone(), s.score))
            .collect();
        Found { hits, method }
    }
}

/// What a query is made of before it is one vector: the towers' embeddings
/// and shots of the collection. [`crate::query::SearchRequest::parts`] makes one from a
/// request.
#[derive(Debug, Clone, Copy)]
pub struct QueryParts<'a> {
    /// The text tower's embedding.
    pub text: Option<&'a [f32]>,
    /// The image tower's embedding.
    pub image: Option<&'a [f32]>,
    /// Weight of the image against the text, in `[0, 1]`.
    pub image_weight: f32,
    /// "More like this" shot.
    pub like_shot: Option<ShotId>,
    /// Shots marked relevant.
    pub positive: &'a [ShotId],
    /// Shots marked not relevant.
    pub negative: &'a [ShotId],
}

/// A search's answer: hits, best first, and how they were found.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The hits, best first.
    pub hits: Vec<SearchHit>,
    /// [`Method::Exact`] or [`Method::Hnsw`].
    pub method: Method,
}
