//! A pure-Rust reader for the files usearch's `Index::save` writes, so that the
//! edge component (which cannot link usearch's C++ on `wasm32-wasip2`) can load
//! the index the indexer publishes, vectors and HNSW graph included.
//!
//! The layout, from usearch 2.x `index_dense.hpp` (`index_dense_gt::save_to_stream`)
//! and `index.hpp` (`index_gt::save_to_stream`), all little-endian:
//!
//! ```text
//! rows: u32, bytes_per_vector: u32      (u64 each when saved with use_64_bit_dimensions)
//! rows × bytes_per_vector               the vectors, in slot order
//! 64-byte dense header: "usearch", version u16×3, metric u8, scalar u8, key kind u8,
//!     slot kind u8, count_present u64, count_deleted u64, dimensions u64, multi u8, zeros
//! graph header: size, connectivity, connectivity_base, max_level, entry_slot (u64 each)
//! size × level: i16                     levels of every node
//! size × node: key (u64), level (i16),
//!     level 0: count u32 + connectivity_base × slot u32,
//!     levels 1..=level: count u32 + connectivity × slot u32
//! ```
//!
//! Every length and slot is checked against the file before use, so a corrupt
//! or truncated file is an error naming what is wrong, never a panic.

use std::path::{Path, PathBuf};

use half::f16;

use crate::error::IoAt;

/// The magic string at the start of the dense header.
const MAGIC: &[u8; 7] = b"usearch";
/// Size of the dense header.
const DENSE_HEADER_BYTES: usize = 64;
/// Size of the graph header (five u64).
const GRAPH_HEADER_BYTES: usize = 40;
/// usearch's "no key" marker, left on removed entries.
pub const FREE_KEY: u64 = u64::MAX;
/// Levels above this are not produced by any sane connectivity; refuse them
/// rather than allocate for them.
const MAX_LEVEL: usize = 64;

/// usearch scalar kind codes (`scalar_kind_t`).
mod kind {
    pub const F32: u8 = 11;
    pub const F16: u8 = 12;
    pub const I8: u8 = 23;
    pub const U64: u8 = 14;
    pub const U32: u8 = 15;
}

/// Distance metric of an index, named in the bundle manifest as usearch
/// names it (`cos`, `ip`, `l2sq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Metric {
    /// Cosine distance `1 − cos`.
    #[serde(rename = "cos")]
    Cos,
    /// Inner-product distance `1 − a·b`.
    #[serde(rename = "ip")]
    InnerProduct,
    /// Squared Euclidean distance (usearch writes it; search here does not
    /// read it: [`crate::shot_index::ShotIndex`] refuses it).
    #[serde(rename = "l2sq")]
    L2Squared,
}

/// Scalar kind of stored vectors, named in the bundle manifest and on the
/// indexer's command line (`f32`, `f16`, `i8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScalarKind {
    /// 32-bit floats.
    F32,
    /// 16-bit floats: half the bytes, the same top 10 at 768 dimensions.
    F16,
    /// 8-bit integers scaled per row ([`crate::vector::quantize_i8`]).
    I8,
}

impl ScalarKind {
    /// Every kind, in the order the CLI lists them.
    pub const ALL: [ScalarKind; 3] = [ScalarKind::F32, ScalarKind::F16, ScalarKind::I8];

    /// The manifest's name.
    pub fn name(self) -> &'static str {
        match self {
            ScalarKind::F32 => "f32",
            ScalarKind::F16 => "f16",
            ScalarKind::I8 => "i8",
        }
    }
}

impl std::fmt::Display for ScalarKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a [`ScalarKind`] or a [`Metric`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?}: expected one of {expected}")]
pub struct UnknownName {
    /// What was being named.
    pub what: &'static str,
    /// The name given.
    pub name: String,
    /// The accepted names.
    pub expected: &'static str,
}

impl std::str::FromStr for ScalarKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        ScalarKind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| UnknownName {
            what: "quantization",
            name: s.into(),
            expected: "f32, f16, i8",
        })
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Metric {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        [Metric::Cos, Metric::InnerProduct, Metric::L2Squared]
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| UnknownName { what: "metric", name: s.into(), expected: "cos, ip, l2sq" })
    }
}

impl Metric {
    fn from_code(code: u8) -> Option<Self> {
        match code {
            b'c' => Some(Metric::Cos),
            b'i' => Some(Metric::InnerProduct),
            b'e' => Some(Metric::L2Squared),
            _ => None,
        }
    }

    /// The name the bundle manifest uses (`cos`, `ip`, `l2sq`).
    pub fn name(self) -> &'static str {
        match self {
            Metric::Cos => "cos",
            Metric::InnerProduct => "ip",
            Metric::L2Squared => "l2sq",
        }
    }
}

/// The stored vectors, row `slot` for slot `slot`.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredVectors {
    /// 32-bit floats, `rows × dimensions`.
    F32(Vec<f32>),
    /// 16-bit floats, `rows × dimensions`.
    F16(Vec<f16>),
    /// 8-bit integers, `rows × dimensions`, for a cos index: only each row's
    /// direction counts. `busca-index` scales each row so its largest
    /// component is ±127 ([`crate::vector::quantize_i8`]); usearch's own cast
    /// (row normalised, times 127, truncated) reads the same way, coarser.
    I8(Vec<i8>),
}

impl StoredVectors {
    /// The scalar kind of the rows.
    pub fn kind(&self) -> ScalarKind {
        match self {
            StoredVectors::F32(_) => ScalarKind::F32,
            StoredVectors::F16(_) => ScalarKind::F16,
            StoredVectors::I8(_) => ScalarKind::I8,
        }
    }

    /// The manifest's name for the scalar kind (`f32`, `f16`, `i8`).
    pub fn kind_name(&self) -> &'static str {
        self.kind().name()
    }
}

/// The HNSW graph of an index: levels and neighbour lists per node (slot).
#[derive(Debug, Clone, PartialEq)]
pub struct HnswGraph {
    /// Neighbours per node on levels above 0 (M).
    pub connectivity: usize,
    /// Neighbours per node on level 0.
    pub connectivity_base: usize,
    /// Highest level of any node.
    pub max_level: usize,
    /// Where searches start (a node on `max_level`).
    pub entry_slot: u32,
    /// Top level of each node.
    levels: Vec<u8>,
    /// Index into `list_starts` of each node's level-0 list; its level-l list
    /// is at `first_list[node] + l`.
    first_list: Vec<u32>,
    /// Start of each neighbour list in `neighbours`; one extra at the end.
    list_starts: Vec<u32>,
    /// All neighbour slots, list after list.
    neighbours: Vec<u32>,
}

impl HnswGraph {
    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// Top level of `slot`.
    pub fn level(&self, slot: u32) -> usize {
        self.levels[slot as usize] as usize
    }

    /// Neighbours of `slot` on `level` (empty above the node's level).
    pub fn neighbours(&self, slot: u32, level: usize) -> &[u32] {
        let slot = slot as usize;
        if level > self.levels[slot] as usize {
            return &[];
        }
        let list = self.first_list[slot] as usize + level;
        &self.neighbours[self.list_starts[list] as usize..self.list_starts[list + 1] as usize]
    }
}

/// A usearch index file, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct UsearchFile {
    /// usearch version that wrote the file (major, minor, patch).
    pub version: (u16, u16, u16),
    /// Distance metric.
    pub metric: Metric,
    /// Vector dimension.
    pub dimensions: usize,
    /// Live entries (`rows − count_deleted`).
    pub count_present: u64,
    /// Removed entries still in the file (their key is [`FREE_KEY`]).
    pub count_deleted: u64,
    /// Key of each slot.
    pub keys: Vec<u64>,
    /// Vector of each slot.
    pub vectors: StoredVectors,
    /// The proximity graph over the slots.
    pub graph: HnswGraph,
}

/// Why a usearch file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum UsearchFileError {
    /// The file could not be read.
    #[error("cannot read usearch index {0}")]
    Io(#[source] IoAt),
    /// The content is not a usearch index this reader understands.
    #[error("usearch index {path} is not readable: {reason}")]
    Format {
        /// The file (or `<memory>`).
        path: PathBuf,
        /// What is wrong, with the offset where it matters.
        reason: FormatError,
    },
}

/// What is wrong with the bytes of a usearch file, with the offset where it
/// matters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Neither matrix prefix leads to the dense header.
    #[error("no usearch header found ({len} bytes): not a usearch index, or truncated")]
    NoHeader {
        /// The file's length.
        len: usize,
    },
    /// The header is at the start: saved without its vectors.
    #[error("the file holds no vectors (saved without them); save the index with its vectors")]
    NoVectors,
    /// A part runs past the end of the file.
    #[error("truncated: {what} needs {needs} bytes at byte {at} but the file has {len}")]
    Truncated {
        /// The part.
        what: &'static str,
        /// Its size.
        needs: usize,
        /// Where it starts.
        at: usize,
        /// The file's length.
        len: usize,
    },
    /// A size computed from the header does not fit in memory addresses.
    #[error("{0} overflows")]
    Overflow(&'static str),
    /// Not usearch 2.x.
    #[error("written by usearch {0}.{1}.{2}; this reader reads 2.x")]
    Version(u16, u16, u16),
    /// usearch 2 before 2.10 numbered the kinds differently.
    #[error("written by usearch 2.{0}; re-save with usearch 2.10 or newer")]
    OldVersion(u16),
    /// An unknown metric code.
    #[error("metric code {0:#04x} is not supported (cos, ip, l2sq)")]
    Metric(u8),
    /// Keys are not u64.
    #[error("key kind {0} is not supported (u64 only)")]
    KeyKind(u8),
    /// Slots are not u32.
    #[error("slot kind {0} is not supported (u32 only)")]
    SlotKind(u8),
    /// An unknown scalar kind.
    #[error("scalar kind {0} is not supported (f32, f16 or i8)")]
    ScalarKind(u8),
    /// Several vectors per key.
    #[error("multi-vector indexes are not supported")]
    Multi,
    /// The header's dimension and scalar size disagree with the row size.
    #[error("{dimensions} dimensions of {scalar_bytes} bytes do not match {row_bytes}-byte vector rows")]
    RowSize {
        /// From the header.
        dimensions: usize,
        /// Bytes per scalar.
        scalar_bytes: usize,
        /// From the matrix prefix.
        row_bytes: usize,
    },
    /// The header's counts disagree with the matrix.
    #[error("header counts {present} present + {deleted} deleted, but the file holds {rows} vectors")]
    Counts {
        /// Present entries.
        present: u64,
        /// Deleted entries.
        deleted: u64,
        /// Rows in the matrix.
        rows: usize,
    },
    /// Bytes follow the graph.
    #[error("{0} unexpected bytes after the graph")]
    TrailingBytes(usize),
    /// The graph and the matrix disagree on the node count.
    #[error("graph has {size} nodes but the file holds {rows} vectors")]
    GraphSize {
        /// Nodes in the graph header.
        size: u64,
        /// Rows in the matrix.
        rows: usize,
    },
    /// Connectivity out of the range any index uses.
    #[error("connectivity {connectivity}/{base} out of range")]
    Connectivity {
        /// M.
        connectivity: u64,
        /// M at level 0.
        base: u64,
    },
    /// More levels than any index has.
    #[error("max level {0} out of range")]
    MaxLevel(u64),
    /// The entry point is not a node.
    #[error("entry slot {entry} is not a node (of {rows})")]
    EntrySlot {
        /// The entry slot.
        entry: u64,
        /// The nodes.
        rows: usize,
    },
    /// A level outside the header's range.
    #[error("node {slot} has level {level}, outside 0..={max}")]
    NodeLevel {
        /// The node.
        slot: usize,
        /// Its level.
        level: i16,
        /// The header's maximum.
        max: u64,
    },
    /// A node's own level disagrees with the level table.
    #[error("node {slot} at byte {at} says level {level}, the level table {table}")]
    NodeLevelMismatch {
        /// The node.
        slot: usize,
        /// Where it starts.
        at: usize,
        /// What it says.
        level: i16,
        /// What the table says.
        table: u8,
    },
    /// A neighbour list longer than its capacity.
    #[error("node {slot} level {level} at byte {at} has {count} neighbours, more than {capacity}")]
    NeighbourCount {
        /// The node.
        slot: usize,
        /// The level.
        level: usize,
        /// Where the list starts.
        at: usize,
        /// Its count.
        count: usize,
        /// Its capacity.
        capacity: usize,
    },
    /// A link to a slot that does not exist.
    #[error("node {slot} level {level} links to slot {neighbour}, outside the {rows} nodes")]
    NeighbourSlot {
        /// The node.
        slot: usize,
        /// The level.
        level: usize,
        /// The link.
        neighbour: u32,
        /// The nodes.
        rows: usize,
    },
}

impl UsearchFile {
    /// Reads and parses the file at `path`.
    pub fn read(path: &Path) -> Result<Self, UsearchFileError> {
        let bytes = std::fs::read(path).map_err(|e| UsearchFileError::Io(IoAt::at(path)(e)))?;
        Self::parse(&bytes).map_err(|reason| UsearchFileError::Format {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses the bytes of a saved index (same as [`UsearchFile::read`] without
    /// the path). The error says what is wrong and where.
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self, UsearchFileError> {
        Self::parse(bytes).map_err(|reason| UsearchFileError::Format {
            path: PathBuf::from("<memory>"),
            reason,
        })
    }

    fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        // The matrix prefix is two u32 unless the file was saved with 64-bit
        // dimensions; usearch's own loader tells them apart by where the magic is.
        let (rows, row_bytes, matrix_start) = detect_matrix_prefix(bytes)?;
        let mut cursor = Cursor {
            bytes,
            offset: matrix_start,
        };
        let matrix = cursor.take(
            rows.checked_mul(row_bytes).ok_or(FormatError::Overflow("vector matrix size"))?,
            "vector matrix",
        )?;

        let head = cursor.take(DENSE_HEADER_BYTES, "dense header")?;
        let version = (le_u16(&head[7..9]), le_u16(&head[9..11]), le_u16(&head[11..13]));
        if version.0 != 2 {
            return Err(FormatError::Version(version.0, version.1, version.2));
        }
        let (metric_code, scalar, key_kind, slot_kind) = (head[13], head[14], head[15], head[16]);
        let count_present = le_u64(&head[17..25]);
        let count_deleted = le_u64(&head[25..33]);
        let dimensions = usize::try_from(le_u64(&head[33..41])).map_err(|_| FormatError::Overflow("dimensions"))?;
        let multi = head[41] != 0;
        // Before 2.10 the kind codes were numbered differently; we only read newer.
        if version.1 < 10 {
            return Err(FormatError::OldVersion(version.1));
        }
        let metric = Metric::from_code(metric_code)
            .ok_or(FormatError::Metric(metric_code))?;
        if key_kind != kind::U64 {
            return Err(FormatError::KeyKind(key_kind));
        }
        if slot_kind != kind::U32 {
            return Err(FormatError::SlotKind(slot_kind));
        }
        if multi {
            return Err(FormatError::Multi);
        }
        let scalar_bytes = match scalar {
            kind::F32 => 4,
            kind::F16 => 2,
            kind::I8 => 1,
            other => return Err(FormatError::ScalarKind(other)),
        };
        if dimensions == 0 || dimensions.checked_mul(scalar_bytes) != Some(row_bytes) {
            return Err(FormatError::RowSize { dimensions, scalar_bytes, row_bytes });
        }
        if count_present.checked_add(count_deleted) != Some(rows as u64) {
            return Err(FormatError::Counts { present: count_present, deleted: count_deleted, rows });
        }
        let vectors = match scalar {
            kind::F32 => StoredVectors::F32(matrix.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()),
            kind::F16 => StoredVectors::F16(matrix.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]])).collect()),
            _ => StoredVectors::I8(matrix.iter().map(|&b| b as i8).collect()),
        };

        let (keys, graph) = parse_graph(&mut cursor, rows)?;
        if cursor.offset != bytes.len() {
            return Err(FormatError::TrailingBytes(bytes.len() - cursor.offset));
        }
        Ok(UsearchFile {
            version,
            metric,
            dimensions,
            count_present,
            count_deleted,
            keys,
            vectors,
            graph,
        })
    }

    /// Number of slots (present and deleted).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the file holds no vectors.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Finds the vector-matrix prefix: `(rows, bytes per row, offset of the matrix)`.
fn detect_matrix_prefix(bytes: &[u8]) -> Result<(usize, usize, usize), FormatError> {
    let magic_at = |offset: Option<usize>| {
        offset.is_some_and(|o| bytes.len() >= o.saturating_add(DENSE_HEADER_BYTES) && &bytes[o..o + 7] == MAGIC)
    };
    if bytes.len() >= 8 {
        let rows = le_u32(&bytes[0..4]) as usize;
        let cols = le_u32(&bytes[4..8]) as usize;
        let header = rows.checked_mul(cols).and_then(|m| m.checked_add(8));
        if magic_at(header) {
            return Ok((rows, cols, 8));
        }
    }
    if bytes.len() >= 16 {
        let rows = usize::try_from(le_u64(&bytes[0..8])).ok();
        let cols = usize::try_from(le_u64(&bytes[8..16])).ok();
        if let (Some(rows), Some(cols)) = (rows, cols) {
            let header = rows.checked_mul(cols).and_then(|m| m.checked_add(16));
            if magic_at(header) {
                return Ok((rows, cols, 16));
            }
        }
    }
    if bytes.len() >= 7 && &bytes[..7] == MAGIC {
        return Err(FormatError::NoVectors);
    }
    Err(FormatError::NoHeader { len: bytes.len() })
}

fn parse_graph(cursor: &mut Cursor<'_>, rows: usize) -> Result<(Vec<u64>, HnswGraph), FormatError> {
    let head = cursor.take(GRAPH_HEADER_BYTES, "graph header")?;
    let field = |i: usize| le_u64(&head[i * 8..i * 8 + 8]);
    let (size, connectivity, connectivity_base, max_level, entry_slot) =
        (field(0), field(1), field(2), field(3), field(4));
    if size != rows as u64 {
        return Err(FormatError::GraphSize { size, rows });
    }
    if connectivity == 0 || connectivity > 4096 || connectivity_base == 0 || connectivity_base > 8192 {
        return Err(FormatError::Connectivity { connectivity, base: connectivity_base });
    }
    if max_level as usize > MAX_LEVEL {
        return Err(FormatError::MaxLevel(max_level));
    }
    if rows > 0 && entry_slot >= rows as u64 {
        return Err(FormatError::EntrySlot { entry: entry_slot, rows });
    }
    let (connectivity, connectivity_base) = (connectivity as usize, connectivity_base as usize);

    let level_bytes = cursor.take(rows.checked_mul(2).ok_or(FormatError::Overflow("level table"))?, "level table")?;
    let mut levels = Vec::with_capacity(rows);
    for (slot, b) in level_bytes.chunks_exact(2).enumerate() {
        let level = i16::from_le_bytes([b[0], b[1]]);
        if level < 0 || level as u64 > max_level {
            return Err(FormatError::NodeLevel { slot, level, max: max_level });
        }
        levels.push(level as u8);
    }

    let mut keys = Vec::with_capacity(rows);
    let mut first_list = Vec::with_capacity(rows);
    let mut list_starts = vec![0u32];
    // Sized from the header but never beyond what the rest of the file can hold,
    // so a corrupt header cannot make us reserve gigabytes.
    let remaining_slots = (cursor.bytes.len() - cursor.offset) / 4;
    let mut neighbours: Vec<u32> = Vec::with_capacity((rows.saturating_mul(connectivity_base) / 2).min(remaining_slots));
    for (slot, &table_level) in levels.iter().enumerate() {
        let node_start = cursor.offset;
        keys.push(le_u64(cursor.take(8, "node key")?));
        let level = i16::from_le_bytes(cursor.take(2, "node level")?.try_into().expect("2 bytes"));
        if level < 0 || level as u8 != table_level {
            return Err(FormatError::NodeLevelMismatch { slot, at: node_start, level, table: table_level });
        }
        first_list.push(u32::try_from(list_starts.len() - 1).map_err(|_| FormatError::Overflow("list count"))?);
        for l in 0..=level as usize {
            let capacity = if l == 0 { connectivity_base } else { connectivity };
            let list_at = cursor.offset;
            let count = le_u32(cursor.take(4, "neighbour count")?) as usize;
            let slots = cursor.take(capacity * 4, "neighbour list")?;
            if count > capacity {
                return Err(FormatError::NeighbourCount { slot, level: l, at: list_at, count, capacity });
            }
            for b in slots[..count * 4].chunks_exact(4) {
                let neighbour = le_u32(b);
                if neighbour as usize >= rows {
                    return Err(FormatError::NeighbourSlot { slot, level: l, neighbour, rows });
                }
                neighbours.push(neighbour);
            }
            list_starts.push(u32::try_from(neighbours.len()).map_err(|_| FormatError::Overflow("neighbour count"))?);
        }
    }
    Ok((
        keys,
        HnswGraph {
            connectivity,
            connectivity_base,
            max_level: max_level as usize,
            entry_slot: entry_slot as u32,
            levels,
            first_list,
            list_starts,
            neighbours,
        },
    ))
}

struct Cursor<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FormatError> {
        let end = self
            .offset
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(FormatError::Truncated { what, needs: n, at: self.offset, len: self.bytes.len() })?;
        let out = &self.bytes[self.offset..end];
        self.offset = end;
        Ok(out)
    }
}

fn le_u16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}
fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}
fn le_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
}

/// Writes an index in usearch's format (32-bit matrix prefix, u64 keys, u32
/// slots). For tests and for small bundles written without usearch; the
/// indexer uses usearch itself. The graph is the one given (its lists must
/// respect the connectivities).
pub fn write(file: &UsearchFile) -> Vec<u8> {
    let rows = file.keys.len();
    let (scalar, scalar_bytes) = match &file.vectors {
        StoredVectors::F32(_) => (kind::F32, 4),
        StoredVectors::F16(_) => (kind::F16, 2),
        StoredVectors::I8(_) => (kind::I8, 1),
    };
    let mut out = Vec::new();
    out.extend_from_slice(&(rows as u32).to_le_bytes());
    out.extend_from_slice(&((file.dimensions * scalar_bytes) as u32).to_le_bytes());
    match &file.vectors {
        StoredVectors::F32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        StoredVectors::F16(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        StoredVectors::I8(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
    }
    let mut head = [0u8; DENSE_HEADER_BYTES];
    head[..7].copy_from_slice(MAGIC);
    head[7..9].copy_from_slice(&file.version.0.to_le_bytes());
    head[9..11].copy_from_slice(&file.version.1.to_le_bytes());
    head[11..13].copy_from_slice(&file.version.2.to_le_bytes());
    head[13] = match file.metric {
        Metric::Cos => b'c',
        Metric::InnerProduct => b'i',
        Metric::L2Squared => b'e',
    };
    head[14] = scalar;
    head[15] = kind::U64;
    head[16] = kind::U32;
    head[17..25].copy_from_slice(&file.count_present.to_le_bytes());
    head[25..33].copy_from_slice(&file.count_deleted.to_le_bytes());
    head[33..41].copy_from_slice(&(file.dimensions as u64).to_le_bytes());
    out.extend_from_slice(&head);
    let g = &file.graph;
    for v in [rows as u64, g.connectivity as u64, g.connectivity_base as u64, g.max_level as u64, g.entry_slot as u64] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for &level in &g.levels {
        out.extend_from_slice(&(level as i16).to_le_bytes());
    }
    for slot in 0..rows {
        out.extend_from_slice(&file.keys[slot].to_le_bytes());
        out.extend_from_slice(&(g.levels[slot] as i16).to_le_bytes());
        for l in 0..=g.levels[slot] as usize {
            let capacity = if l == 0 { g.connectivity_base } else { g.connectivity };
            let list = g.neighbours(slot as u32, l);
            out.extend_from_slice(&(list.len() as u32).to_le_bytes());
            for i in 0..capacity {
                out.extend_from_slice(&list.get(i).copied().unwrap_or(0).to_le_bytes());
            }
        }
    }
    out
}

impl HnswGraph {
    /// A graph from explicit per-node lists: `lists[slot][level]`. Used to
    /// write small indexes without usearch (tests, tiny bundles).
    pub fn from_lists(connectivity: usize, connectivity_base: usize, entry_slot: u32, lists: &[Vec<Vec<u32>>]) -> Self {
        let mut levels = Vec::with_capacity(lists.len());
        let mut first_list = Vec::with_capacity(lists.len());
        let mut list_starts = vec![0u32];
        let mut neighbours = Vec::new();
        for node in lists {
            assert!(!node.is_empty(), "every node has a level-0 list");
            levels.push((node.len() - 1) as u8);
            first_list.push((list_starts.len() - 1) as u32);
            for list in node {
                neighbours.extend_from_slice(list);
                list_starts.push(neighbours.len() as u32);
            }
        }
        let max_level = levels.iter().copied().max().unwrap_or(0) as usize;
        HnswGraph {
            connectivity,
            connectivity_base,
            max_level,
            entry_slot,
            levels,
            first_list,
            list_starts,
            neighbours,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> UsearchFile {
        let lists = vec![
            vec![vec![1, 2], vec![2]],
            vec![vec![0, 2]],
            vec![vec![0, 1], vec![0]],
        ];
        UsearchFile {
            version: (2, 26, 6),
            metric: Metric::Cos,
            dimensions: 2,
            count_present: 3,
            count_deleted: 0,
            keys: vec![10, 20, 30],
            vectors: StoredVectors::F32(vec![1.0, 0.0, 0.0, 1.0, 0.6, 0.8]),
            graph: HnswGraph::from_lists(2, 4, 0, &lists),
        }
    }

    #[test]
    fn write_then_parse_round_trips() {
        let file = tiny();
        let parsed = UsearchFile::parse_bytes(&write(&file)).unwrap();
        assert_eq!(parsed, file);
        assert_eq!(parsed.graph.neighbours(0, 1), &[2]);
        assert_eq!(parsed.graph.neighbours(1, 1), &[] as &[u32]);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = write(&tiny());
        for len in 0..bytes.len() {
            assert!(UsearchFile::parse_bytes(&bytes[..len]).is_err(), "prefix of {len} bytes parsed");
        }
    }

    #[test]
    fn corrupt_fields_are_named() {
        let bytes = write(&tiny());
        let head = 8 + 3 * 8;
        let reason = |bytes: &[u8]| UsearchFile::parse_bytes(bytes).unwrap_err().to_string();
        let mut bad = bytes.clone();
        bad[head + 14] = 4; // bf16 vectors
        assert!(reason(&bad).contains("scalar kind 4"), "{}", reason(&bad));
        let mut bad = bytes.clone();
        bad[head + 13] = b'h';
        assert!(reason(&bad).contains("metric"));
        // A neighbour slot outside the graph must not be trusted.
        let mut bad = bytes.clone();
        let first_list = head + 64 + 40 + 6 + 10 + 4;
        bad[first_list..first_list + 4].copy_from_slice(&99u32.to_le_bytes());
        assert!(reason(&bad).contains("slot 99"), "{}", reason(&bad));
        assert!(matches!(
            UsearchFile::parse_bytes(&bad),
            Err(UsearchFileError::Format { reason: FormatError::NeighbourSlot { neighbour: 99, rows: 3, .. }, .. })
        ));
        assert!(reason(b"hello, not an index").contains("no usearch header"));
        assert!(matches!(
            UsearchFile::parse_bytes(&bytes[..bytes.len() - 1]),
            Err(UsearchFileError::Format { reason: FormatError::Truncated { .. }, .. })
        ));
    }
}
