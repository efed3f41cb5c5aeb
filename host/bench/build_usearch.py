"""Build the usearch HNSW file of a synthetic bench bundle.

    python build_usearch.py VECTORS.f32 DIM OUT.usearch CONNECTIVITY EXPANSION_ADD EXPANSION_SEARCH [DTYPE]

VECTORS.f32 is a raw little-endian row-major f32 matrix of normalised rows;
row i gets key i. A VECTORS.i8 file holds rows already quantized by
busca_core::vector::quantize_i8 (busca-host-bench writes it), stored as given. Metric cos, DTYPE storage (default f16: what busca-index
writes, busca_core::bundle::IndexOptions::new; or f32, i8). Uses the PyPI usearch wheel
(scripts/requirements.txt) because it builds a 200k-row graph in a minute.
"""
import sys

import numpy as np
from usearch.index import Index


def main() -> None:
    vectors_path, dim, out, conn, exp_add, exp_search = sys.argv[1:7]
    dtype = sys.argv[7] if len(sys.argv) > 7 else "f16"
    dim = int(dim)
    raw_dtype = np.int8 if vectors_path.endswith(".i8") else "<f4"
    vectors = np.fromfile(vectors_path, dtype=raw_dtype).reshape(-1, dim)
    if raw_dtype is np.int8 and dtype != "i8":
        sys.exit(f"{vectors_path}: quantized i8 rows can only build an i8 index, not {dtype}")
    index = Index(
        ndim=dim,
        metric="cos",
        dtype=dtype,
        connectivity=int(conn),
        expansion_add=int(exp_add),
        expansion_search=int(exp_search),
    )
    index.add(np.arange(len(vectors), dtype=np.uint64), vectors)
    index.save(out)
    print(f"{out}: {len(index)} vectors")


if __name__ == "__main__":
    main()
