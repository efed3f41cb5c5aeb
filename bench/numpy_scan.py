"""numpy's exact scan, the floor an exact search is held to: `X @ q` (BLAS)
and the top k by `argpartition`, timed per query.

    python bench/numpy_scan.py DIR DIM K [PACE_MS]

DIR holds `x.f32` (the matrix, rows of DIM little-endian f32) and `q.f32`
(the queries, same layout). Prints one time per query, in ms, on one line;
the first 20 queries are run once untimed first (warm caches, BLAS threads
started). With PACE_MS, each timed query starts after that many ms idle, as
`busca-host-bench --pace-ms` times the component's scans (a scan on this
machine runs up to 2.5× slower after a few ms idle than back to back).
Thread count: numpy's default, or whatever OPENBLAS_NUM_THREADS,
OMP_NUM_THREADS and MKL_NUM_THREADS say.

Used by core's `bench_search --numpy` (native scan) and by
`busca-host-bench` (the scan inside the component), so that both compare
with the same thing.
"""

import sys
import time

import numpy as np


def main() -> None:
    d, dim, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    pace = float(sys.argv[4]) / 1e3 if len(sys.argv) > 4 else 0.0
    x = np.fromfile(d + "/x.f32", dtype="<f4").reshape(-1, dim)
    qs = np.fromfile(d + "/q.f32", dtype="<f4").reshape(-1, dim)
    for q in qs[:20]:
        s = x @ q
    times = []
    for q in qs:
        if pace:
            time.sleep(pace)
        t = time.perf_counter()
        s = x @ q
        np.argpartition(-s, k)[:k]
        times.append((time.perf_counter() - t) * 1e3)
    print(" ".join(f"{t:.5f}" for t in times))


if __name__ == "__main__":
    main()
