//! ONNX graphs run with tract: loading (from a model directory described by
//! its manifest, or from bytes), checking inputs against the graph's own
//! declared types and shapes, and running. Independent of wasi:nn so that it
//! builds and can be exercised natively; `wasm.rs` maps it onto the wasi:nn
//! resources.
//!
//! Inputs are checked before tract sees them (names, element types, ranks,
//! fixed dimensions, byte counts, sizes), because on wasm a panic is a trap,
//! and the provider's contract is that every failure is a wasi:nn error.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use busca_core::error::IoAt;
use busca_core::model::ModelManifest;
use tract_onnx::prelude::*;

use crate::error::ProviderError;
use crate::tensor::{ElemType, RawTensor};

/// Largest tensor accepted as an input, in bytes (a batch of 16 images of
/// 3×336×336 f32 is 21 MiB; a batch of text ids a few KiB).
pub const MAX_INPUT_BYTES: usize = 32 << 20;
/// Largest graph accepted by `load` from bytes (the ViT-L/14 text tower is
/// 0.49 GB in f32; wasm32 memory ends at 4 GiB).
pub const MAX_GRAPH_BYTES: usize = 1 << 30;
/// Largest batch (first dimension) run at once.
pub const MAX_BATCH: usize = 64;

/// One graph input as the model declares it.
#[derive(Debug, Clone)]
struct InputSpec {
    name: String,
    ty: ElemType,
    /// `None` for a symbolic dimension (the batch).
    dims: Vec<Option<usize>>,
}

/// A loaded, optimised graph.
pub struct Graph {
    name: String,
    plan: Arc<TypedSimplePlan>,
    inputs: Vec<InputSpec>,
    /// The ONNX model's own output names, in output order (tract relabels
    /// outputs while optimising, so they are taken before).
    outputs: Vec<String>,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph").field("name", &self.name).field("outputs", &self.outputs).finish()
    }
}

impl Graph {
    /// Parses and optimises an ONNX model, leaving symbolic dimensions (the
    /// batch) symbolic.
    pub fn from_onnx(name: &str, bytes: &[u8]) -> Result<Graph, ProviderError> {
        if bytes.len() > MAX_GRAPH_BYTES {
            return Err(ProviderError::TooLarge { what: format!("graph {name:?}"), bytes: bytes.len(), limit: MAX_GRAPH_BYTES });
        }
        let encoding = |e: TractError| ProviderError::Encoding { name: name.to_string(), detail: format!("{e:#}") };
        let model = tract_onnx::onnx().model_for_read(&mut &bytes[..]).map_err(encoding)?;
        let outputs = model
            .output_outlets()
            .map_err(encoding)?
            .iter()
            .map(|&outlet| {
                model
                    .outlet_label(outlet)
                    .map(str::to_string)
                    .unwrap_or_else(|| model.node(outlet.node).name.clone())
            })
            .collect::<Vec<_>>();
        let typed = model.into_optimized().map_err(encoding)?;
        let mut inputs = Vec::new();
        for (i, outlet) in typed.input_outlets().map_err(encoding)?.iter().enumerate() {
            let fact = typed.input_fact(i).map_err(encoding)?;
            let ty = elem_type(fact.datum_type).ok_or_else(|| ProviderError::Encoding {
                name: name.to_string(),
                detail: format!("input {i} has element type {:?}, which wasi:nn cannot carry", fact.datum_type),
            })?;
            let dims = fact.shape.iter().map(|d| d.to_i64().ok().map(|v| v as usize)).collect();
            inputs.push(InputSpec { name: typed.node(outlet.node).name.clone(), ty, dims });
        }
        let plan = typed.into_runnable().map_err(encoding)?;
        Ok(Graph { name: name.to_string(), plan, inputs, outputs })
    }

    /// The graph's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The output names, in order.
    pub fn output_names(&self) -> &[String] {
        &self.outputs
    }

    /// Runs the graph on named inputs (every input of the graph, once) and
    /// returns every output under its ONNX name.
    pub fn run(&self, named: Vec<(String, RawTensor)>) -> Result<Vec<(String, RawTensor)>, ProviderError> {
        let invalid = |detail: String| ProviderError::InvalidInput { graph: self.name.clone(), detail };
        let mut slots: Vec<Option<TValue>> = vec![None; self.inputs.len()];
        for (name, raw) in named {
            let index = self.inputs.iter().position(|s| s.name == name).ok_or_else(|| {
                let names: Vec<&str> = self.inputs.iter().map(|s| s.name.as_str()).collect();
                invalid(format!("no input named {name:?}; its inputs are {names:?}"))
            })?;
            if slots[index].is_some() {
                return Err(invalid(format!("input {name:?} given twice")));
            }
            slots[index] = Some(self.check_input(&self.inputs[index], raw)?.into_tvalue());
        }
        let mut values = TVec::new();
        for (spec, slot) in self.inputs.iter().zip(slots) {
            values.push(slot.ok_or_else(|| invalid(format!("input {:?} is missing", spec.name)))?);
        }
        let out = self
            .plan
            .run(values)
            .map_err(|e| ProviderError::Run { graph: self.name.clone(), detail: format!("{e:#}") })?;
        out.into_iter()
            .zip(&self.outputs)
            .map(|(value, name)| {
                let tensor = value.into_tensor();
                let ty = elem_type(tensor.datum_type()).ok_or_else(|| ProviderError::Run {
                    graph: self.name.clone(),
                    detail: format!("output {name:?} has element type {:?}, which wasi:nn cannot carry", tensor.datum_type()),
                })?;
                let dims = tensor.shape().iter().map(|&d| d as u32).collect();
                // Little-endian on wasm32 and x86-64: the tensor's own memory.
                let data = tensor.as_bytes().to_vec();
                Ok((name.clone(), RawTensor { dims, ty, data }))
            })
            .collect()
    }

    /// Checks one input against the graph's declaration and makes it a tract tensor.
    fn check_input(&self, spec: &InputSpec, raw: RawTensor) -> Result<Tensor, ProviderError> {
        let invalid = |detail: String| ProviderError::InvalidInput { graph: self.name.clone(), detail };
        if raw.ty != spec.ty {
            return Err(invalid(format!("input {:?} takes {:?} elements, got {:?}", spec.name, spec.ty, raw.ty)));
        }
        if raw.dims.len() != spec.dims.len() {
            return Err(invalid(format!(
                "input {:?} has rank {}, got dimensions {:?}",
                spec.name,
                spec.dims.len(),
                raw.dims
            )));
        }
        let mut count: usize = 1;
        for (axis, (&got, want)) in raw.dims.iter().zip(&spec.dims).enumerate() {
            let got = got as usize;
            match want {
                Some(want) if *want != got => {
                    return Err(invalid(format!("input {:?} axis {axis} must be {want}, got {:?}", spec.name, raw.dims)))
                }
                None if axis == 0 && got > MAX_BATCH => {
                    return Err(invalid(format!("input {:?}: batch {got} is more than the {MAX_BATCH} run at once", spec.name)))
                }
                _ => {}
            }
            if got == 0 {
                return Err(invalid(format!("input {:?} has an empty dimension: {:?}", spec.name, raw.dims)));
            }
            count = count.checked_mul(got).filter(|&c| c <= MAX_INPUT_BYTES).ok_or(ProviderError::TooLarge {
                what: format!("input {:?} of graph {:?}", spec.name, self.name),
                bytes: usize::MAX,
                limit: MAX_INPUT_BYTES,
            })?;
        }
        let bytes = count * raw.ty.size();
        if bytes > MAX_INPUT_BYTES {
            return Err(ProviderError::TooLarge {
                what: format!("input {:?} of graph {:?}", spec.name, self.name),
                bytes,
                limit: MAX_INPUT_BYTES,
            });
        }
        if raw.data.len() != bytes {
            return Err(invalid(format!(
                "input {:?} with dimensions {:?} of {:?} needs {bytes} bytes, got {}",
                spec.name,
                raw.dims,
                raw.ty,
                raw.data.len()
            )));
        }
        let shape: Vec<usize> = raw.dims.iter().map(|&d| d as usize).collect();
        // SAFETY: every ElemType is a plain number type, for which any bytes are
        // a valid value, and the length was checked against the shape above.
        let tensor = unsafe { Tensor::from_raw_dt(datum_type(raw.ty), &shape, &raw.data) };
        tensor.map_err(|e| invalid(format!("input {:?}: {e:#}", spec.name)))
    }

    /// Runs the graph once on zeros of batch 1, so that whatever tract builds
    /// on first use exists before a snapshot is taken; returns the outputs.
    pub fn warm_up(&self) -> Result<Vec<(String, RawTensor)>, ProviderError> {
        let inputs = self
            .inputs
            .iter()
            .map(|spec| {
                let dims: Vec<u32> = spec.dims.iter().map(|d| d.unwrap_or(1) as u32).collect();
                let count: usize = dims.iter().map(|&d| d as usize).product();
                let raw = RawTensor { dims, ty: spec.ty, data: vec![0; count * spec.ty.size()] };
                (spec.name.clone(), raw)
            })
            .collect();
        self.run(inputs)
    }
}

fn datum_type(ty: ElemType) -> DatumType {
    match ty {
        ElemType::F16 => DatumType::F16,
        ElemType::F32 => DatumType::F32,
        ElemType::F64 => DatumType::F64,
        ElemType::U8 => DatumType::U8,
        ElemType::I32 => DatumType::I32,
        ElemType::I64 => DatumType::I64,
    }
}

fn elem_type(dt: DatumType) -> Option<ElemType> {
    Some(match dt {
        DatumType::F16 => ElemType::F16,
        DatumType::F32 => ElemType::F32,
        DatumType::F64 => ElemType::F64,
        DatumType::U8 => ElemType::U8,
        DatumType::I32 => ElemType::I32,
        DatumType::I64 => ElemType::I64,
        _ => return None,
    })
}

/// Bytes read per call: wasmtime bounds the data one host call may copy
/// (`HostcallFuelExhausted` on a single 0.49 GB read), and other hosts may
/// bound it lower, so a graph file is read in pieces.
const READ_CHUNK: usize = 8 << 20;

/// Reads a graph file, refusing one above [`MAX_GRAPH_BYTES`] before reading.
fn read_graph_file(path: &Path) -> Result<Vec<u8>, ProviderError> {
    use std::io::Read;
    let read_err = |e| ProviderError::Read(IoAt::at(path)(e));
    let mut file = std::fs::File::open(path).map_err(read_err)?;
    let len = file.metadata().map_err(read_err)?.len();
    let len = usize::try_from(len).ok().filter(|&l| l <= MAX_GRAPH_BYTES).ok_or_else(|| ProviderError::TooLarge {
        what: format!("graph file {}", path.display()),
        bytes: usize::try_from(len).unwrap_or(usize::MAX),
        limit: MAX_GRAPH_BYTES,
    })?;
    let mut bytes = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        let end = (filled + READ_CHUNK).min(len);
        match file.read(&mut bytes[filled..end]).map_err(read_err)? {
            0 => {
                return Err(read_err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("the file ended after {filled} of {len} bytes"),
                )))
            }
            n => filled += n,
        }
    }
    Ok(bytes)
}

/// The graphs of one or more model directories, by the graph names their
/// manifests give.
#[derive(Debug, Default)]
pub struct Registry {
    graphs: BTreeMap<String, Arc<Graph>>,
}

impl Registry {
    /// Loads every tower of the model manifest in `dir` (files checked against
    /// the manifest's sha256 where it gives one), each optimised and run once.
    pub fn load_model_dir(dir: &Path) -> Result<Registry, ProviderError> {
        let manifest = ModelManifest::load(dir)?;
        let mut registry = Registry::default();
        for spec in manifest.graphs() {
            let (graph_name, file, sha256, output) = (spec.graph_name, spec.file, spec.sha256, spec.output);
            let path = dir.join(file);
            let bytes = read_graph_file(&path)?;
            if let Some(expected) = sha256 {
                let actual = busca_core::bundle::sha256_hex(&bytes);
                if !actual.eq_ignore_ascii_case(expected) {
                    return Err(ProviderError::Checksum { path, expected: expected.to_string(), actual });
                }
            }
            let graph = Graph::from_onnx(graph_name, &bytes)?;
            if !graph.output_names().iter().any(|n| n == output) {
                return Err(ProviderError::Encoding {
                    name: graph_name.to_string(),
                    detail: format!("the manifest names output {output:?}, the graph has {:?}", graph.output_names()),
                });
            }
            graph.warm_up()?;
            registry.graphs.insert(graph_name.to_string(), Arc::new(graph));
        }
        Ok(registry)
    }

    /// The graph named `name`.
    pub fn get(&self, name: &str) -> Result<Arc<Graph>, ProviderError> {
        self.graphs.get(name).cloned().ok_or_else(|| ProviderError::NotFound {
            name: name.to_string(),
            available: if self.graphs.is_empty() {
                "none".to_string()
            } else {
                format!("{:?}", self.graphs.keys().collect::<Vec<_>>())
            },
        })
    }

    /// The graph names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.graphs.keys().map(String::as_str)
    }
}
