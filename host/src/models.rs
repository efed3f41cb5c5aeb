//! The CLIP graphs the component loads with wasi-nn `load-by-name`: every model
//! directory's image and text ONNX files, loaded once at start-up into ONNX
//! Runtime sessions ([`crate::onnx`]) and shared by every request.
//!
//! wasmtime-wasi-nn's own `preload` names a graph after its directory and
//! expects `model.onnx`; our model directories hold two towers named by
//! [`ModelManifest`], so the registry here is keyed by the manifest's graph names.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use busca_core::model::ModelManifest;
use wasmtime_wasi_nn::{Graph, GraphRegistry, Registry};

use crate::error::HostError;
use crate::onnx::OrtGraph;

/// Initialises ONNX Runtime from the shared library at `dylib`, else where
/// `busca_onnx::runtime::locate` finds it (`ORT_DYLIB_PATH`, the setup
/// script's venv), with one intra-op pool of `threads` threads (0: one per
/// core) shared by every session: a lone query's encoder uses every core
/// (ViT-L/14's image tower on two cores: 1.28 s → 0.78 s), concurrent ones
/// share them. Call before [`PreloadedGraphs::load`]; the first call wins.
pub fn init_onnx_runtime(dylib: Option<&Path>, threads: u16) -> Result<(), HostError> {
    busca_onnx::init_runtime_shared_pool(dylib, "busca-serve", usize::from(threads))?;
    Ok(())
}

/// One loaded graph and where it came from.
#[derive(Clone)]
struct NamedGraph {
    graph: Graph,
    /// The same graph, for callers outside wasi-nn (the encoder endpoint).
    ort: OrtGraph,
    dir: PathBuf,
}

/// Graphs by name, loaded once; each request gets a cheap clone (the sessions
/// are shared behind `Arc`s).
#[derive(Clone, Default)]
pub struct PreloadedGraphs {
    graphs: HashMap<String, NamedGraph>,
    manifests: Vec<(PathBuf, ModelManifest)>,
}

impl PreloadedGraphs {
    /// Loads the image graph and every text graph of every model directory.
    pub fn load(model_dirs: &[PathBuf]) -> Result<Self, HostError> {
        // One session per core (up to 4) per graph, so that requests do not
        // queue on one session's lock; their operators all run on the
        // process's shared pool (`init_onnx_runtime`).
        let sessions = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        let mut out = PreloadedGraphs::default();
        for dir in model_dirs {
            let manifest = ModelManifest::load(dir).map_err(|source| HostError::Model { dir: dir.clone(), source })?;
            for spec in manifest.graphs() {
                let (graph_name, file) = (spec.graph_name, spec.file);
                if let Some(existing) = out.graphs.get(graph_name) {
                    return Err(HostError::DuplicateGraph {
                        name: graph_name.to_string(),
                        first: existing.dir.clone(),
                        second: dir.clone(),
                    });
                }
                let path = dir.join(file);
                if !path.is_file() {
                    return Err(HostError::io(&path)(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "the model manifest names this graph file",
                    )));
                }
                let graph = OrtGraph::load(&path, sessions)?;
                tracing::info!(
                    graph = %graph_name,
                    file = %path.display(),
                    inputs = ?graph.input_names(),
                    outputs = ?graph.output_names(),
                    sessions,
                    "preloaded graph"
                );
                out.graphs.insert(
                    graph_name.to_string(),
                    NamedGraph {
                        graph: graph.clone().into_wasi_graph(),
                        ort: graph,
                        dir: dir.clone(),
                    },
                );
            }
            out.manifests.push((dir.clone(), manifest));
        }
        Ok(out)
    }

    /// The graph names offered, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.graphs.keys().cloned().collect();
        names.sort();
        names
    }

    /// The graph preloaded as `name`, to run outside wasi-nn.
    pub fn get(&self, name: &str) -> Option<&OrtGraph> {
        self.graphs.get(name).map(|g| &g.ort)
    }

    /// The manifests of the loaded model directories.
    pub fn manifests(&self) -> &[(PathBuf, ModelManifest)] {
        &self.manifests
    }

    /// A wasi-nn registry for one store.
    pub fn registry(&self) -> Registry {
        Registry::from(GraphsByName(
            self.graphs
                .iter()
                .map(|(name, g)| (name.clone(), g.graph.clone()))
                .collect(),
        ))
    }
}

/// The per-store registry handed to wasi-nn.
struct GraphsByName(HashMap<String, Graph>);

impl GraphRegistry for GraphsByName {
    fn get(&self, name: &str) -> Option<&Graph> {
        self.0.get(name)
    }
    fn get_mut(&mut self, name: &str) -> Option<&mut Graph> {
        self.0.get_mut(name)
    }
}
