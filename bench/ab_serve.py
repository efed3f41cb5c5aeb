#!/usr/bin/env python3
"""Two builds of the query component A/B under busca-serve: both served at
once on the same bundles, the same requests sent to each in turn, so that
whatever else loads the machine hits both alike. Prints each side's
`took_ms` quartiles (the component's own time for the request).

    python bench/ab_serve.py --busca-serve BIN --model models/tiny --bundles DIR \\
        --work DIR [--kind exact|like|text|image] [--requests 60] A.wasm B.wasm

`exact` is `like_shot` under a filter every shot passes (a scan of every
row), `like` the same without it (a graph walk above 10k shots), `text` a
text query, `image` a 1280×720 JPEG made with ffmpeg (`testsrc2`). Shot ids
are taken from 0..--shots. Servers listen on 127.0.0.1 and are ended by
their own id (edge.py's `Server`). The host README's and core's allocator
figures (arena alignment, large blocks) were measured this way.
"""
import argparse
import json
import statistics
import subprocess
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from edge import busca_serve, post  # noqa: E402


def post_image(port, jpeg, k=20, timeout=60):
    boundary = "ab-serve-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"q.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + jpeg + (
            f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"k\"\r\n\r\n{k}\r\n--{boundary}--\r\n").encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/search", data=body,
                                 headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, json.loads(r.read())


def request(port, kind, i, shots, jpeg):
    shot = (i * 37) % shots
    if kind == "image":
        return post_image(port, jpeg)
    body = {"exact": {"like_shot": shot, "k": 20, "filter": {"start_ms": 0}},
            "like": {"like_shot": shot, "k": 20},
            "text": {"text": f"a blue scene {i}", "k": 20}}[kind]
    return post(port, body)


def quartiles(xs):
    q = statistics.quantiles(xs, n=4)
    return {"p25": round(q[0], 3), "p50": round(q[1], 3), "p75": round(q[2], 3), "n": len(xs)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--busca-serve", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--bundles", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--kind", choices=["exact", "like", "text", "image"], default="exact")
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--shots", type=int, default=20000)
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    jpeg = None
    if a.kind == "image":
        path = a.work / "query-1280x720.jpg"
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc2=size=1280x720:rate=1", "-frames:v", "1", "-q:v", "4", str(path)], check=True)
        jpeg = path.read_bytes()
    servers = [busca_serve(a.busca_serve, c, a.bundles, a.model, a.work, f"ab-{n}") for n, c in (("a", a.a), ("b", a.b))]
    try:
        took = [[], []]
        for i in range(a.requests + 3):
            for side, server in enumerate(servers):
                status, body = request(server.port, a.kind, i, a.shots, jpeg)
                if status != 200:
                    raise RuntimeError(f"{a.kind} request {i} to side {'ab'[side]}: HTTP {status}")
                if i >= 3:  # the first three of each are warm-up
                    took[side].append(body["took_ms"])
    finally:
        for server in servers:
            server.stop()
    print(json.dumps({"kind": a.kind, "a": {"component": str(a.a), **quartiles(took[0])},
                      "b": {"component": str(a.b), **quartiles(took[1])}}, indent=1))


if __name__ == "__main__":
    main()
