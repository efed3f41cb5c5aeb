//! Tensors as wasi:nn carries them, independent of the backend.

pub use busca_core::remote_nn::ElementType as ElemType;

/// A tensor as wasi:nn carries it: dimensions, element type, little-endian bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTensor {
    /// Dimensions.
    pub dims: Vec<u32>,
    /// Element type.
    pub ty: ElemType,
    /// Little-endian element bytes, `product(dims) * ty.size()` of them.
    pub data: Vec<u8>,
}

