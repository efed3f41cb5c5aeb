#!/usr/bin/env python3
"""The exported real-architecture models, measured in one run: sizes, the
CPU time of one query through ONNX Runtime from Python (what a script would
pay), and the time of one query inside the component under busca-serve
(`took_ms`: tokenize or decode and preprocess, encode through wasi:nn, search
a 100-shot bundle), per text tower and for an image query.

    python bench/models.py --busca-serve BIN --host-bench BIN --dist query-component/dist \
        --work DIR MODEL_DIR [MODEL_DIR ...]

MODEL_DIR: made by models/export_clip.py (+ export_mclip.py for the
multilingual tower) or models/export_siglip2.py, with --random-weights here:
speed and size are real, rankings are not. Prints one JSON object
(bench/report.py renders it). Every server it starts listens on 127.0.0.1
and is ended by its own id.
"""
import argparse
import io
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from edge import busca_serve, log, post  # noqa: E402  (one Server and one busca-serve launch for the benches)

# A Spanish and an English query for each tower; the language picks the tower.
QUERIES = {"es": "trabajadores cavando zanjas", "en": "workers digging trenches"}
IMAGE_SIZE = (1280, 720)


def onnx_bytes(model_dir, file):
    path = model_dir / file
    data = path.with_name(path.name + ".data")
    return path.stat().st_size + (data.stat().st_size if data.exists() else 0)


def ort_cpu(model_dir, manifest, runs):
    """ms per query (batch 1, median of `runs` after one warm-up) of each tower
    through onnxruntime's CPU provider, all cores."""
    import numpy as np
    import onnxruntime as ort
    out = {}
    towers = [("image", manifest["image"], np.random.default_rng(0).standard_normal(
        (1, 3, manifest["image"]["image_size"], manifest["image"]["image_size"])).astype(np.float32))]
    for t in manifest["text"]:
        ids = np.full((1, t["context_length"]), t["pad_id"], dtype=np.int64)
        ids[0, :12] = np.arange(5, 17)
        towers.append((f"text:{t['id']}", t, ids))
    for name, tower, x in towers:
        t0 = time.perf_counter()
        sess = ort.InferenceSession(str(model_dir / tower["file"]), providers=["CPUExecutionProvider"])
        load_s = time.perf_counter() - t0
        sess.run([tower["output"]], {tower["input"]: x})
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            sess.run([tower["output"]], {tower["input"]: x})
            times.append((time.perf_counter() - t0) * 1e3)
        out[name] = {"p50_ms": statistics.median(times), "load_s": load_s, "bytes": onnx_bytes(model_dir, tower["file"])}
        del sess
    return out


def jpeg(size):
    """A 1280x720 JPEG of smooth colours (what a photo upload looks like to the decoder)."""
    from PIL import Image
    w, h = size
    img = Image.linear_gradient("L").resize((w, h)).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def in_component(a, model_dir, manifest, work):
    """took_ms p50 per request under busca-serve: each text tower (picked by
    its language) and an image query."""
    out = subprocess.run([str(a.host_bench), "--component", str(a.dist / "query_component.wasm"),
                          "--model", str(model_dir), "--work", str(work), "--python", a.python,
                          "--sizes", "100", "--quantization", "i8", "--bundles-only"],
                         check=True, capture_output=True, text=True)
    bundles = Path(out.stdout.strip().splitlines()[-1])
    server = busca_serve(a.busca_serve, a.dist / "query_component.wasm", bundles, model_dir, work, "serve")
    res = {"listening_s": server.listening_s}
    try:
        import base64
        image = base64.b64encode(jpeg(IMAGE_SIZE)).decode()
        bodies = {f"text:{t['id']}": {"text": QUERIES["es" if t["id"] != "clip" else "en"], "text_model": t["id"],
                                       "k": 10} for t in manifest["text"]}
        bodies["image_1280x720_jpeg"] = {"image": image, "k": 10}
        for name, body in bodies.items():
            status, first = post(server.port, body, timeout=600)
            if status != 200:
                raise RuntimeError(f"{name}: {status} {first}")
            tooks = []
            for _ in range(a.requests):
                status, got = post(server.port, body, timeout=600)
                tooks.append(got["took_ms"])
            res[name] = {"took_p50_ms": statistics.median(tooks), "first_took_ms": first["took_ms"],
                         "text_model": first.get("text_model"),
                         "probability": first["results"][0].get("probability") if first["results"] else None}
    finally:
        server.stop()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", type=Path, nargs="+")
    ap.add_argument("--dist", type=Path, required=True)
    ap.add_argument("--busca-serve", type=Path, required=True)
    ap.add_argument("--host-bench", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--runs", type=int, default=10, help="ONNX Runtime runs per tower")
    ap.add_argument("--requests", type=int, default=10, help="requests per query kind in busca-serve")
    a = ap.parse_args()
    res = {}
    for model_dir in a.models:
        manifest = json.loads((model_dir / "manifest.json").read_text())
        name = manifest["model_id"]
        work = a.work / name
        work.mkdir(parents=True, exist_ok=True)
        log(f"{name}: ONNX Runtime from Python")
        row = {"score": manifest["score"], "fit": f"{manifest['image']['resize']}/{manifest['image']['crop']}",
               "text_towers": [t["id"] for t in manifest["text"]], "ort_cpu": ort_cpu(model_dir, manifest, a.runs)}
        log(f"{name}: in the component under busca-serve")
        row["component"] = in_component(a, model_dir, manifest, work)
        res[name] = row
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
