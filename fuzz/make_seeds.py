"""Writes the fuzz targets' seed corpora into fuzz/corpus/<target>/.

Small valid inputs of every kind each target reads, so that coverage-guided
fuzzing starts inside the parsers rather than at their first byte check. The
seeds are committed; this script says how they were made (Pillow and the
usearch wheel from scripts/requirements-tests.txt):

    python fuzz/make_seeds.py
"""
import base64
import io
import json
import pathlib
import shutil
import tempfile

import numpy as np
from PIL import Image
from usearch.index import Index

ROOT = pathlib.Path(__file__).resolve().parent
CORPUS = ROOT / "corpus"
BOUNDARY = "busca-fuzz-boundary"  # as src/lib.rs


def write(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def image_bytes(fmt, size=(8, 6)):
    img = Image.new("RGB", size)
    img.putdata([((x * 37) % 256, (y * 53) % 256, 128) for y in range(size[1]) for x in range(size[0])])
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


def multipart(fields):
    out = b""
    for name, value, filename in fields:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename:
            out += b"Content-Type: image/png\r\n"
        out += b"\r\n" + value + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def main():
    if CORPUS.exists():
        shutil.rmtree(CORPUS)
    png = image_bytes("PNG")
    # search_body: the first byte picks the content type (src/lib.rs).
    json_bodies = [
        {"text": "a red car", "k": 5},
        {"text": "x", "image": base64.b64encode(png).decode(), "image_weight": 0.3},
        {"like_shot": 3, "k": 10},
        {"text": "y", "positive": [1, 2], "negative": [3], "filter": {"video_ids": ["tape_0"]}},
        {"text": "z", "collection": "demo", "filter": {"start_ms": 500, "end_ms": 9000, "min_score": 0.1}},
    ]
    for i, body in enumerate(json_bodies):
        write("search_body", f"json_{i}", b"\x00" + json.dumps(body).encode())
    write("search_body", "multipart_text", b"\x01" + multipart([("text", b"blue sky", None), ("k", b"7", None)]))
    write("search_body", "multipart_image", b"\x01" + multipart([("image", png, "q.png"), ("image_weight", b"0.5", None)]))
    write("search_body", "form_json", b"\x02" + json.dumps({"text": "a"}).encode())
    write("search_body", "untyped_json", b"\x03" + json.dumps({"text": "b", "k": 1}).encode())

    for fmt in ["PNG", "JPEG", "GIF", "BMP", "WEBP"]:
        write("query_image", fmt.lower(), image_bytes(fmt))

    rng = np.random.default_rng(18)
    vectors = rng.standard_normal((12, 4)).astype(np.float32)
    for dtype in ["f32", "f16", "i8"]:
        with tempfile.TemporaryDirectory() as tmp:
            path = pathlib.Path(tmp) / "index.usearch"
            index = Index(ndim=4, metric="cos", dtype=dtype, connectivity=4)
            index.add(np.arange(12, dtype=np.uint64), vectors)
            index.save(str(path))
            write("usearch_file", f"cos_{dtype}", path.read_bytes())

    model = json.loads((ROOT.parent / "models" / "tiny" / "manifest.json").read_text())
    write("model_manifest", "tiny", json.dumps(model, indent=1))
    bundle = {
        "format_version": 1, "collection": "demo", "version": "v000001", "created_unix_ms": 0,
        "model": model,
        "index": {"file": "shots.usearch", "dimensions": model["embedding_dim"], "metric": "cos",
                  "quantization": "f16", "connectivity": 16, "expansion_add": 128, "expansion_search": 64},
        "segmentation": {"sample_fps": 2.0, "class_algorithm": "k-means", "classes": 4, "min_scene_ms": 2000,
                         "shot_similarity": 0.9, "min_shot_ms": 500, "cut_similarity": 0.95, "seed": 7},
        "counts": {"videos": 1, "frames": 10, "classes": 4, "scenes": 1, "shots": 2},
        "files": {"shots.json": {"bytes": 2, "sha256": "0" * 64},
                  "shots.usearch": {"bytes": 4096, "sha256": "1" * 64}},
    }
    write("bundle_manifest", "demo", json.dumps(bundle, indent=1))

    for i, text in enumerate(["00:02:22.205", "2:41.861", "12.5", "1:99", "99:59:59.999", "0", " 01:00 "]):
        write("timecode", f"t{i}", text)


if __name__ == "__main__":
    main()
