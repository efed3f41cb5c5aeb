//! wasi-nn graphs over ONNX Runtime (`ort` rc.10) for every tensor type a CLIP
//! tower uses.
//!
//! wasmtime-wasi-nn 48's own ONNX backend builds here but only feeds f32
//! inputs: the text tower's i64 token ids hit an `unimplemented!` panic
//! (`backend/onnx.rs`, "TensorType::I64 not supported by ONNX"), and it reads
//! outputs as f32 only. So the host implements wasmtime-wasi-nn's
//! `BackendGraph`/`BackendExecutionContext` traits itself; the wasi-nn WIT
//! plumbing (resources, errors, `load-by-name`) stays wasmtime-wasi-nn's.
//!
//! Each graph keeps a few sessions, so that concurrent requests do not queue
//! on one session lock; under busca-serve every session's operators run on
//! one intra-op pool shared by the process (`models::init_onnx_runtime`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use std::path::Path;

use busca_onnx::{Interface, OnnxError, SessionOptions, SessionSource};
use ort::session::{Session, SessionInputValue};
use ort::tensor::TensorElementType;
use ort::value::{Tensor as OrtTensor, ValueType};
use wasmtime_wasi_nn::backend::{
    BackendError, BackendExecutionContext, BackendGraph, Id, NamedTensor,
};
use wasmtime_wasi_nn::wit::TensorType;
use wasmtime_wasi_nn::{ExecutionContext, Graph, Tensor};

fn backend_err(message: impl std::fmt::Display) -> BackendError {
    BackendError::BackendAccess(wasmtime::format_err!("{message}"))
}

/// A model input or output as the session declares it.
#[derive(Debug, Clone)]
struct Slot {
    name: String,
    ty: TensorType,
    /// `-1` where the dimension is dynamic.
    dims: Vec<i64>,
}

struct Shared {
    sessions: Vec<Mutex<Session>>,
    inputs: Vec<Slot>,
    outputs: Vec<Slot>,
    next: AtomicUsize,
}

/// One ONNX model, loaded once, shared by every request.
#[derive(Clone)]
pub struct OrtGraph(Arc<Shared>);

impl OrtGraph {
    /// Loads the ONNX file at `path` into `sessions` sessions (at least one)
    /// on the CPU, each of one intra-op thread unless the runtime was started
    /// with a shared pool.
    pub fn load(path: &Path, sessions: usize) -> Result<Self, OnnxError> {
        let mut loaded = Vec::new();
        for _ in 0..sessions.max(1) {
            // From the file, not from bytes: a tower past protobuf's 2 GiB
            // (M-CLIP's XLM-R) keeps its weights in `<file>.data` beside it,
            // which ONNX Runtime finds relative to the model's path.
            let session = busca_onnx::session::build(SessionSource::File(path), SessionOptions::cpu(1))
                .map_err(|e| match e {
                    OnnxError::Load { source, .. } => OnnxError::Load { path: path.to_path_buf(), source },
                    other => other,
                })?;
            loaded.push(session.inner);
        }
        let unsupported = |name: &str, found: String| OnnxError::Interface {
            path: path.to_path_buf(),
            what: Interface::UnsupportedValue { name: name.to_string(), found },
        };
        let slots = |values: Vec<(String, &ValueType)>| -> Result<Vec<Slot>, OnnxError> {
            values
                .into_iter()
                .map(|(name, vt)| match vt {
                    ValueType::Tensor { ty, shape, .. } => Ok(Slot {
                        ty: tensor_type(*ty).ok_or_else(|| unsupported(&name, format!("{ty:?}")))?,
                        dims: shape.to_vec(),
                        name,
                    }),
                    other => Err(unsupported(&name, format!("{other:?}"))),
                })
                .collect()
        };
        let first = &loaded[0];
        let inputs = slots(
            first
                .inputs
                .iter()
                .map(|i| (i.name.clone(), &i.input_type))
                .collect(),
        )?;
        let outputs = slots(
            first
                .outputs
                .iter()
                .map(|o| (o.name.clone(), &o.output_type))
                .collect(),
        )?;
        Ok(OrtGraph(Arc::new(Shared {
            sessions: loaded.into_iter().map(Mutex::new).collect(),
            inputs,
            outputs,
            next: AtomicUsize::new(0),
        })))
    }

    /// The graph as wasi-nn hands it to guests.
    pub fn into_wasi_graph(self) -> Graph {
        Graph::from(Box::new(self) as Box<dyn BackendGraph>)
    }

    /// Runs the graph on inputs given by name and returns every output by
    /// name (blocking: call it off the async executor).
    pub fn compute(&self, named: Vec<NamedTensor>) -> Result<Vec<NamedTensor>, BackendError> {
        self.0.compute_named(named)
    }

    /// Input names, in order.
    pub fn input_names(&self) -> Vec<String> {
        self.0.inputs.iter().map(|s| s.name.clone()).collect()
    }

    /// Output names, in order.
    pub fn output_names(&self) -> Vec<String> {
        self.0.outputs.iter().map(|s| s.name.clone()).collect()
    }
}

impl Shared {
    /// A free session if there is one, else wait for the next in turn.
    fn session(&self) -> MutexGuard<'_, Session> {
        let n = self.sessions.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            if let Ok(guard) = self.sessions[(start + i) % n].try_lock() {
                return guard;
            }
        }
        self.sessions[start % n]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn run(&self, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>, BackendError> {
        let mut values: Vec<(String, SessionInputValue<'static>)> =
            Vec::with_capacity(inputs.len());
        for (slot, tensor) in self.inputs.iter().zip(inputs) {
            let tensor = tensor
                .as_ref()
                .ok_or_else(|| backend_err(format!("input tensor {} was not set", slot.name)))?;
            values.push((slot.name.clone(), to_ort(slot, tensor)?));
        }
        let mut session = self.session();
        let outputs = session.run(values).map_err(backend_err)?;
        self.outputs
            .iter()
            .enumerate()
            .map(|(i, slot)| from_ort(slot, &outputs[i]))
            .collect()
    }

    /// Runs on inputs given by name (each checked against the model) and
    /// returns every output by name: the WIT `compute`, and the encoder
    /// endpoint's.
    fn compute_named(&self, named: Vec<NamedTensor>) -> Result<Vec<NamedTensor>, BackendError> {
        let mut slots: Vec<Option<Tensor>> = vec![None; self.inputs.len()];
        for input in named {
            let index = self.input_index(&input.name)?;
            check_shape(&self.inputs[index], &input.tensor)?;
            slots[index] = Some(input.tensor);
        }
        let outputs = self.run(&slots)?;
        Ok(self
            .outputs
            .iter()
            .zip(outputs)
            .map(|(slot, tensor)| NamedTensor { name: slot.name.clone(), tensor })
            .collect())
    }

    fn input_index(&self, name: &str) -> Result<usize, BackendError> {
        self.inputs
            .iter()
            .position(|s| s.name == name)
            .or_else(|| {
                name.parse::<usize>()
                    .ok()
                    .filter(|i| *i < self.inputs.len())
            })
            .ok_or_else(|| backend_err(format!("the graph has no input {name:?}")))
    }
}

impl BackendGraph for OrtGraph {
    fn init_execution_context(&self) -> Result<ExecutionContext, BackendError> {
        let ctx = OrtContext {
            inputs: vec![None; self.0.inputs.len()],
            outputs: Vec::new(),
            graph: self.0.clone(),
        };
        Ok(ExecutionContext::from(
            Box::new(ctx) as Box<dyn BackendExecutionContext>
        ))
    }
}

struct OrtContext {
    graph: Arc<Shared>,
    inputs: Vec<Option<Tensor>>,
    outputs: Vec<Tensor>,
}

impl BackendExecutionContext for OrtContext {
    fn set_input(&mut self, id: Id, tensor: &Tensor) -> Result<(), BackendError> {
        let index = match id {
            Id::Index(i) => i as usize,
            Id::Name(name) => self.graph.input_index(&name)?,
        };
        let slot = self
            .graph
            .inputs
            .get(index)
            .ok_or_else(|| backend_err(format!("input index {index} out of range")))?;
        check_shape(slot, tensor)?;
        self.inputs[index] = Some(tensor.clone());
        Ok(())
    }

    fn compute(
        &mut self,
        inputs: Option<Vec<NamedTensor>>,
    ) -> Result<Option<Vec<NamedTensor>>, BackendError> {
        match inputs {
            // WIT: inputs by name, outputs returned by name.
            Some(named) => Ok(Some(self.graph.compute_named(named)?)),
            // WITX: inputs set one by one, outputs read one by one.
            None => {
                self.outputs = self.graph.run(&self.inputs)?;
                Ok(None)
            }
        }
    }

    fn get_output(&mut self, id: Id) -> Result<Tensor, BackendError> {
        let index = match id {
            Id::Index(i) => i as usize,
            Id::Name(name) => self
                .graph
                .outputs
                .iter()
                .position(|s| s.name == name)
                .ok_or_else(|| backend_err(format!("the graph has no output {name:?}")))?,
        };
        self.outputs
            .get(index)
            .cloned()
            .ok_or_else(|| backend_err(format!("no output {index}; has compute been called?")))
    }
}

fn tensor_type(ty: TensorElementType) -> Option<TensorType> {
    Some(match ty {
        TensorElementType::Float32 => TensorType::Fp32,
        TensorElementType::Float64 => TensorType::Fp64,
        TensorElementType::Uint8 => TensorType::U8,
        TensorElementType::Int32 => TensorType::I32,
        TensorElementType::Int64 => TensorType::I64,
        _ => return None,
    })
}

fn element_size(ty: TensorType) -> usize {
    match ty {
        TensorType::U8 => 1,
        TensorType::Fp16 | TensorType::Bf16 => 2,
        TensorType::Fp32 | TensorType::I32 => 4,
        TensorType::Fp64 | TensorType::I64 => 8,
    }
}

/// The guest's tensor must have the model's type and rank, its fixed
/// dimensions, and exactly as many bytes as its dimensions say.
fn check_shape(slot: &Slot, tensor: &Tensor) -> Result<(), BackendError> {
    if tensor.ty != slot.ty {
        return Err(backend_err(format!(
            "input {} is {:?}, the model wants {:?}",
            slot.name, tensor.ty, slot.ty
        )));
    }
    let fits = tensor.dimensions.len() == slot.dims.len()
        && slot
            .dims
            .iter()
            .zip(&tensor.dimensions)
            .all(|(want, got)| *want < 0 || *want == i64::from(*got));
    if !fits {
        return Err(backend_err(format!(
            "input {} has dimensions {:?}, the model wants {:?}",
            slot.name, tensor.dimensions, slot.dims
        )));
    }
    let elements: usize = tensor.dimensions.iter().map(|d| *d as usize).product();
    if elements.checked_mul(element_size(tensor.ty)) != Some(tensor.data.len()) {
        return Err(backend_err(format!(
            "input {} holds {} bytes, its dimensions {:?} need {}",
            slot.name,
            tensor.data.len(),
            tensor.dimensions,
            elements * element_size(tensor.ty)
        )));
    }
    Ok(())
}

fn to_ort(slot: &Slot, tensor: &Tensor) -> Result<SessionInputValue<'static>, BackendError> {
    let dims: Vec<i64> = tensor.dimensions.iter().map(|d| i64::from(*d)).collect();
    let err = |e: ort::Error| backend_err(format!("input {}: {e}", slot.name));
    let bytes = &tensor.data;
    Ok(match tensor.ty {
        TensorType::Fp32 => OrtTensor::from_array((dims, le_values(bytes, f32::from_le_bytes)))
            .map_err(err)?
            .into(),
        TensorType::Fp64 => OrtTensor::from_array((dims, le_values(bytes, f64::from_le_bytes)))
            .map_err(err)?
            .into(),
        TensorType::I32 => OrtTensor::from_array((dims, le_values(bytes, i32::from_le_bytes)))
            .map_err(err)?
            .into(),
        TensorType::I64 => OrtTensor::from_array((dims, le_values(bytes, i64::from_le_bytes)))
            .map_err(err)?
            .into(),
        TensorType::U8 => OrtTensor::from_array((dims, bytes.clone()))
            .map_err(err)?
            .into(),
        other => {
            return Err(backend_err(format!(
                "input {}: {other:?} tensors are not supported",
                slot.name
            )))
        }
    })
}

/// Little-endian bytes to values. `from` is a generic parameter, not a `fn`
/// pointer, so that it is inlined and the loop compiles to a vectorised
/// copy: through a pointer it was one call per element, 150,528 calls for
/// a 224-pixel image tensor (about 0.3 ms of a 1 ms image query's wasi-nn
/// call, timed by hand inside the component).
fn le_values<T, const N: usize>(bytes: &[u8], from: impl Fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|c| from(c.try_into().expect("chunks_exact yields N bytes")))
        .collect()
}

fn from_ort(slot: &Slot, value: &ort::value::DynValue) -> Result<Tensor, BackendError> {
    fn pack<T: Copy, const N: usize>(
        value: &ort::value::DynValue,
        to: fn(T) -> [u8; N],
    ) -> Result<(Vec<u32>, Vec<u8>), ort::Error>
    where
        T: ort::tensor::PrimitiveTensorElementType,
    {
        let (shape, data) = value.try_extract_tensor::<T>()?;
        let dims = shape.iter().map(|d| (*d).max(0) as u32).collect();
        Ok((dims, data.iter().flat_map(|v| to(*v)).collect()))
    }
    let err = |e: ort::Error| backend_err(format!("output {}: {e}", slot.name));
    let (dimensions, data) = match slot.ty {
        TensorType::Fp32 => pack(value, f32::to_le_bytes).map_err(err)?,
        TensorType::Fp64 => pack(value, f64::to_le_bytes).map_err(err)?,
        TensorType::I32 => pack(value, i32::to_le_bytes).map_err(err)?,
        TensorType::I64 => pack(value, i64::to_le_bytes).map_err(err)?,
        TensorType::U8 => pack(value, |v: u8| [v]).map_err(err)?,
        other => {
            return Err(backend_err(format!(
                "output {}: {other:?} tensors are not supported",
                slot.name
            )))
        }
    };
    Ok(Tensor::new(dimensions, slot.ty, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(ty: TensorType, dims: &[i64]) -> Slot {
        Slot {
            name: "input_ids".into(),
            ty,
            dims: dims.to_vec(),
        }
    }

    #[test]
    fn shapes_are_checked_against_the_model() {
        let s = slot(TensorType::I64, &[-1, 77]);
        let ok = Tensor::new(vec![2, 77], TensorType::I64, vec![0; 2 * 77 * 8]);
        assert!(check_shape(&s, &ok).is_ok());
        let wrong_type = Tensor::new(vec![1, 77], TensorType::Fp32, vec![0; 77 * 4]);
        assert!(check_shape(&s, &wrong_type).is_err());
        let wrong_dim = Tensor::new(vec![1, 76], TensorType::I64, vec![0; 76 * 8]);
        assert!(check_shape(&s, &wrong_dim).is_err());
        let short_data = Tensor::new(vec![1, 77], TensorType::I64, vec![0; 77 * 8 - 1]);
        assert!(check_shape(&s, &short_data).is_err());
    }

    #[test]
    fn little_endian_values_round_trip() {
        let ids = [49406i64, 320, 49407, 0];
        let bytes: Vec<u8> = ids.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(le_values(&bytes, i64::from_le_bytes), ids);
    }
}
