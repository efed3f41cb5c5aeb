//! A bundle version loaded for searching, in pure Rust: what the edge
//! component answers queries with, and what native tools check it against.
//!
//! [`Collection`] is the tables, the [`ShotIndex`], the lookups between them,
//! and the query path: [`Collection::compose`] makes one vector of text and
//! image embeddings, "more like this" and relevance feedback;
//! [`Collection::search`] answers it under filters, with the method used.

use std::collections::HashMap;
use std::path::Path;

use crate::bundle::{self, BundleError, MapPoint, OpenBundle, Verify};
use crate::fusion;
use crate::query::{QueryError, SearchFilter, SearchHit};
use crate::shot::{SceneRecord, ShotId, ShotRecord, VideoRecord};
use crate::shot_index::{Method, ShotIndex, ShotIndexError};
use crate::usearch_file::{Metric, ScalarKind, UsearchFile, UsearchFileError};

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
    #[error("bundle {dir} is inconsistent: {what}; re-publish it")]
    Inconsistent {
        /// The version directory.
        dir: std::path::PathBuf,
        /// What disagrees.
        what: Inconsistency,
    },
}

/// How a bundle's files disagree with each other or with its manifest.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Inconsistency {
    /// The index, the manifest's index options and the model disagree on the dimension.
    #[error("index has {index} dimensions, manifest index {manifest} and model {model}")]
    Dimensions {
        /// In the usearch file.
        index: usize,
        /// In the manifest's index options.
        manifest: usize,
        /// The model's embedding dimension.
        model: usize,
    },
    /// The index's metric or scalar kind is not the manifest's.
    #[error("index is {index_metric}/{index_kind}, manifest says {manifest_metric}/{manifest_kind}")]
    IndexKind {
        /// In the usearch file.
        index_metric: Metric,
        /// In the usearch file.
        index_kind: ScalarKind,
        /// In the manifest.
        manifest_metric: Metric,
        /// In the manifest.
        manifest_kind: ScalarKind,
    },
    /// The index cannot be searched.
    #[error(transparent)]
    Index(#[from] ShotIndexError),
    /// A shot is listed twice.
    #[error("shot {0} appears twice in shots.json")]
    DuplicateShot(ShotId),
    /// A shot has no row in the index.
    #[error("shot {0} has no vector in the index")]
    ShotWithoutVector(ShotId),
    /// The index holds vectors no shot names.
    #[error("{shots} shots but {vectors} vectors in the index")]
    Counts {
        /// Shots in shots.json.
        shots: usize,
        /// Keys in the index.
        vectors: usize,
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
        let inconsistent = |what: Inconsistency| CollectionError::Inconsistent {
            dir: bundle.dir.clone(),
            what,
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
            return Err(inconsistent(Inconsistency::Dimensions {
                index: file.dimensions,
                manifest: m.index.dimensions,
                model: m.model.embedding_dim,
            }));
        }
        if file.vectors.kind() != m.index.quantization || file.metric != m.index.metric {
            return Err(inconsistent(Inconsistency::IndexKind {
                index_metric: file.metric,
                index_kind: file.vectors.kind(),
                manifest_metric: m.index.metric,
                manifest_kind: m.index.quantization,
            }));
        }
        let index = ShotIndex::from_usearch(file, m.index.expansion_search).map_err(|e| inconsistent(e.into()))?;
        let mut shot_at = HashMap::with_capacity(shots.len());
        let mut row_shot = vec![u32::MAX; index.len()];
        for (pos, shot) in shots.iter().enumerate() {
            if shot_at.insert(shot.shot_id, pos as u32).is_some() {
                return Err(inconsistent(Inconsistency::DuplicateShot(shot.shot_id)));
            }
            let row = index
                .row_of(shot.shot_id)
                .ok_or_else(|| inconsistent(Inconsistency::ShotWithoutVector(shot.shot_id)))?;
            row_shot[row] = pos as u32;
        }
        if shot_at.len() != index.key_count() {
            return Err(inconsistent(Inconsistency::Counts { shots: shot_at.len(), vectors: index.key_count() }));
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

impl QueryParts<'_> {
    /// Only text: the one kind of query whose cosine a sigmoid-trained model
    /// turns into a match probability (its scale and bias were fitted on
    /// text-image pairs).
    pub fn text_only(&self) -> bool {
        self.text.is_some()
            && self.image.is_none()
            && self.like_shot.is_none()
            && self.positive.is_empty()
            && self.negative.is_empty()
    }
}

/// A search's answer: hits, best first, and how they were found.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The hits, best first.
    pub hits: Vec<SearchHit>,
    /// [`Method::Exact`] or [`Method::Hnsw`].
    pub method: Method,
}
