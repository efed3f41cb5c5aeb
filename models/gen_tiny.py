#!/usr/bin/env python3
"""Generate the tiny, deterministic, CLIP-shaped "colour" models.

Outputs (default ``models/tiny/``): ``image.onnx``, ``text.onnx``,
``manifest.json``. The models have exactly the interface of a real CLIP
export (``pixel_values`` float32 [N,3,224,224] -> ``image_embeds`` float32
[N,768]; ``input_ids`` int64 [N,77] -> ``text_embeds`` float32 [N,768]) but
compute something trivially predictable:

* image: undo CLIP normalisation, take the mean colour c in [0,1]^3, soft-assign
  it to K prototype colours with softmax(-|c - proto|^2 / 0.01) and return
  weights @ P, where P holds K orthonormal 768-d vectors.
* text: count occurrences of a few colour-word token ids (CLIP BPE), map words
  to prototype colours, return counts @ M @ P + 0.05 * g, where g is one more
  orthonormal vector (so a sentence without colour words is still non-zero).

So the frame of a solid blue shot and the query "a blue scene" both embed to
~P_blue, and retrieval results are predictable in tests.

Built with onnx.helper only (opset 17, ir_version 8); no torch, no downloads.
Fully deterministic: regenerating gives byte-identical files.

Needs (project venv /root/.cache/buscaescenas/venv): numpy, onnx, onnxruntime
(only for the self-test), ftfy, regex and ``pip install --no-deps
openai-clip==1.0.1`` (reference tokenizer; its ``clip/__init__`` imports torch,
so only ``clip/simple_tokenizer.py`` is loaded, by file path).

Usage::

    python models/gen_tiny.py            # write models/tiny/* and self-test
    python models/gen_tiny.py --check    # regenerate in a temp dir, exit 1 if bytes differ
    python models/gen_tiny.py --out DIR  # write elsewhere
"""

import argparse
import hashlib
import importlib.util
import json
import math
import os
import shutil
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "tiny")

MODEL_ID = "tiny-colour-v1"
DIM = 768
IMAGE_SIZE = 224
CONTEXT_LENGTH = 77
SOT, EOT = 49406, 49407
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]
TEMPERATURE = 0.01  # softmax(-d^2 / TEMPERATURE)
GENERIC_WEIGHT = 0.05
SEED = 20240611
OPSET = 17
IR_VERSION = 8

# name -> RGB 0-255 (order = prototype index k)
PROTOTYPES = [
    ("black", "000000"),
    ("white", "FFFFFF"),
    ("gray", "808080"),
    ("red", "FF0000"),
    ("green", "00FF00"),
    ("blue", "0000FF"),
    ("yellow", "FFFF00"),
    ("cyan", "00FFFF"),
    ("magenta", "FF00FF"),
    ("orange", "FF8000"),
    ("purple", "800080"),
    ("pink", "FFC0CB"),
    ("brown", "8B4513"),
]

# candidate word -> prototype name; kept only if the CLIP BPE encodes the
# (lowercased) word as exactly one token.
COLOUR_WORDS = [
    ("red", "red"), ("green", "green"), ("blue", "blue"), ("yellow", "yellow"),
    ("cyan", "cyan"), ("magenta", "magenta"), ("white", "white"),
    ("black", "black"), ("gray", "gray"), ("grey", "gray"),
    ("orange", "orange"), ("purple", "purple"), ("pink", "pink"),
    ("brown", "brown"),
    ("rojo", "red"), ("verde", "green"), ("azul", "blue"),
    ("amarillo", "yellow"), ("blanco", "white"), ("negro", "black"),
    ("gris", "gray"), ("naranja", "orange"), ("morado", "purple"),
    ("rosa", "pink"), ("marrón", "brown"),
]


# --------------------------------------------------------------------------
# reference tokenizer (OpenAI CLIP simple_tokenizer, loaded by path)
# --------------------------------------------------------------------------

def load_clip_tokenizer():
    spec = importlib.util.find_spec("clip")  # locates only, does not import torch
    if spec is None or not spec.submodule_search_locations:
        sys.exit("openai-clip is not installed: pip install --no-deps openai-clip==1.0.1")
    path = os.path.join(list(spec.submodule_search_locations)[0], "simple_tokenizer.py")
    mspec = importlib.util.spec_from_file_location("clip_simple_tokenizer", path)
    mod = importlib.util.module_from_spec(mspec)
    mspec.loader.exec_module(mod)
    return mod.SimpleTokenizer()


def clip_tokenize(tok, text):
    """clip.tokenize([text], context_length=77, truncate=True)[0]"""
    ids = [SOT] + tok.encode(text) + [EOT]
    if len(ids) > CONTEXT_LENGTH:
        ids = ids[:CONTEXT_LENGTH]
        ids[-1] = EOT
    return ids + [0] * (CONTEXT_LENGTH - len(ids))


def colour_vocab(tok):
    """[(word, token_id, prototype_index)] for words that are one BPE token;
    also returns the dropped words with their encodings."""
    proto_index = {name: k for k, (name, _) in enumerate(PROTOTYPES)}
    kept, dropped = [], []
    for word, proto in COLOUR_WORDS:
        ids = tok.encode(word.lower())
        if len(ids) == 1:
            kept.append((word, ids[0], proto_index[proto]))
        else:
            dropped.append((word, ids))
    assert len({t for _, t, _ in kept}) == len(kept), "duplicate token ids"
    return kept, dropped


# --------------------------------------------------------------------------
# embedding table: deterministic orthonormal vectors
# --------------------------------------------------------------------------

def orthonormal_vectors(n, dim, seed):
    """n orthonormal vectors in R^dim: numpy default_rng(seed) standard normal
    draws, then (modified) Gram-Schmidt. The arithmetic is done in plain Python
    floats with math.fsum (exactly rounded sums, IEEE mul/div/sqrt) so the
    result does not depend on BLAS/SIMD code paths: the bytes are reproducible
    on any machine."""
    draws = np.random.default_rng(seed).standard_normal((n, dim)).tolist()
    basis = []
    for v in draws:
        for u in basis:
            dot = math.fsum(a * b for a, b in zip(v, u))
            v = [a - dot * b for a, b in zip(v, u)]
        norm = math.sqrt(math.fsum(a * a for a in v))
        basis.append([a / norm for a in v])
    return np.asarray(basis, dtype=np.float64).astype(np.float32)


# --------------------------------------------------------------------------
# ONNX graphs
# --------------------------------------------------------------------------

def _const(name, arr):
    return numpy_helper.from_array(np.ascontiguousarray(arr), name=name)


def _model(graph, doc):
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="buscaescenas-gen_tiny",
        producer_version="1",
        doc_string=doc,
    )
    model.ir_version = IR_VERSION
    model.model_version = 1
    onnx.checker.check_model(model, full_check=True)
    return model


def build_image_model(protos_rgb01, P):
    K = protos_rgb01.shape[0]
    inits = [
        _const("clip_std", np.asarray(STD, np.float32).reshape(1, 3, 1, 1)),
        _const("clip_mean", np.asarray(MEAN, np.float32).reshape(1, 3, 1, 1)),
        _const("axis_1", np.asarray([1], np.int64)),
        _const("axis_2", np.asarray([2], np.int64)),
        _const("prototypes_rgb", protos_rgb01.astype(np.float32)),  # [K,3]
        _const("neg_inv_temperature", np.asarray(-1.0 / TEMPERATURE, np.float32)),
        _const("P", P),  # [K,768]
    ]
    nodes = [
        helper.make_node("Mul", ["pixel_values", "clip_std"], ["x_std"], name="unnorm_mul"),
        helper.make_node("Add", ["x_std", "clip_mean"], ["x_rgb"], name="unnorm_add"),
        helper.make_node("ReduceMean", ["x_rgb"], ["mean_rgb"], axes=[2, 3], keepdims=0,
                         name="mean_colour"),  # [N,3]
        helper.make_node("Unsqueeze", ["mean_rgb", "axis_1"], ["mean_rgb_u"], name="unsq"),  # [N,1,3]
        helper.make_node("Sub", ["mean_rgb_u", "prototypes_rgb"], ["diff"], name="diff"),  # [N,K,3]
        helper.make_node("Mul", ["diff", "diff"], ["diff2"], name="sq"),
        helper.make_node("ReduceSum", ["diff2", "axis_2"], ["dist2"], keepdims=0, name="dist2"),  # [N,K]
        helper.make_node("Mul", ["dist2", "neg_inv_temperature"], ["logits"], name="logits"),
        helper.make_node("Softmax", ["logits"], ["weights"], axis=1, name="softmax"),  # [N,K]
        helper.make_node("MatMul", ["weights", "P"], ["image_embeds"], name="project"),  # [N,768]
    ]
    graph = helper.make_graph(
        nodes, f"{MODEL_ID}-image",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["N", 3, IMAGE_SIZE, IMAGE_SIZE])],
        [helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["N", DIM])],
        initializer=inits,
        value_info=[
            helper.make_tensor_value_info("mean_rgb", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("weights", TensorProto.FLOAT, ["N", K]),
        ],
    )
    return _model(graph, "Tiny colour model (image tower): mean colour -> soft prototype "
                         "assignment -> orthonormal prototype embeddings. Not L2-normalised.")


def build_text_model(token_ids, word_to_proto, P, g):
    W = len(token_ids)
    inits = [
        _const("axis_1", np.asarray([1], np.int64)),
        _const("axis_2", np.asarray([2], np.int64)),
        _const("colour_token_ids", np.asarray(token_ids, np.int64)),  # [W]
        _const("word_to_colour", word_to_proto.astype(np.float32)),  # [W,K]
        _const("P", P),  # [K,768]
        _const("generic", (np.float32(GENERIC_WEIGHT) * g).astype(np.float32)),  # [768]
    ]
    nodes = [
        helper.make_node("Unsqueeze", ["input_ids", "axis_2"], ["ids_u"], name="unsq"),  # [N,77,1]
        helper.make_node("Equal", ["ids_u", "colour_token_ids"], ["hits"], name="match"),  # [N,77,W]
        helper.make_node("Cast", ["hits"], ["hits_f"], to=TensorProto.FLOAT, name="cast"),
        helper.make_node("ReduceSum", ["hits_f", "axis_1"], ["counts"], keepdims=0, name="count"),  # [N,W]
        helper.make_node("MatMul", ["counts", "word_to_colour"], ["colour_counts"], name="to_colour"),
        helper.make_node("MatMul", ["colour_counts", "P"], ["colour_embeds"], name="project"),
        helper.make_node("Add", ["colour_embeds", "generic"], ["text_embeds"], name="add_generic"),
    ]
    graph = helper.make_graph(
        nodes, f"{MODEL_ID}-text",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["N", CONTEXT_LENGTH])],
        [helper.make_tensor_value_info("text_embeds", TensorProto.FLOAT, ["N", DIM])],
        initializer=inits,
        value_info=[helper.make_tensor_value_info("counts", TensorProto.FLOAT, ["N", W])],
    )
    return _model(graph, "Tiny colour model (text tower): colour-word token counts -> "
                         "prototype embeddings + 0.05 * generic vector. Not L2-normalised.")


# --------------------------------------------------------------------------

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(out_dir, colours):
    manifest = {
        "format_version": 1,
        "model_id": MODEL_ID,
        "embedding_dim": DIM,
        "image": {
            "file": "image.onnx",
            "graph_name": f"{MODEL_ID}-image",
            "input": "pixel_values",
            "output": "image_embeds",
            "image_size": IMAGE_SIZE,
            "mean": MEAN,
            "std": STD,
            "resize": "shortest-side-bicubic",
            "crop": "center",
            "sha256": sha256_file(os.path.join(out_dir, "image.onnx")),
        },
        "text": {
            "file": "text.onnx",
            "graph_name": f"{MODEL_ID}-text",
            "input": "input_ids",
            "output": "text_embeds",
            "context_length": CONTEXT_LENGTH,
            "tokenizer": "openai-clip-bpe-49408",
            "pad_id": 0,
            "sha256": sha256_file(os.path.join(out_dir, "text.onnx")),
        },
        "colours": colours,
    }
    with open(os.path.join(out_dir, "manifest.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(manifest, indent=2) + "\n")


def generate(out_dir, tok, verbose=False):
    os.makedirs(out_dir, exist_ok=True)
    kept, dropped = colour_vocab(tok)
    if verbose:
        print("colour words kept (word -> token id -> prototype):")
        for w, t, k in kept:
            print(f"  {w:10s} {t:6d} {PROTOTYPES[k][0]}")
        print("colour words dropped (not a single BPE token):")
        for w, ids in dropped:
            print(f"  {w:10s} {ids}")

    K = len(PROTOTYPES)
    rgb255 = np.asarray([[int(h[i:i + 2], 16) for i in (0, 2, 4)] for _, h in PROTOTYPES])
    protos = (rgb255 / 255.0).astype(np.float32)
    basis = orthonormal_vectors(K + 1, DIM, SEED)
    P, g = basis[:K], basis[K]

    M = np.zeros((len(kept), K), np.float32)
    for i, (_, _, k) in enumerate(kept):
        M[i, k] = 1.0

    img = build_image_model(protos, P)
    txt = build_text_model([t for _, t, _ in kept], M, P, g)
    for name, model in (("image.onnx", img), ("text.onnx", txt)):
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(model.SerializeToString(deterministic=True))
    colours = {name: [int(v) for v in rgb255[k]] for k, (name, _) in enumerate(PROTOTYPES)}
    write_manifest(out_dir, colours)
    return kept


# --------------------------------------------------------------------------
# self-test with onnxruntime
# --------------------------------------------------------------------------

def self_test(out_dir, tok, kept):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    img = ort.InferenceSession(os.path.join(out_dir, "image.onnx"), so, providers=["CPUExecutionProvider"])
    txt = ort.InferenceSession(os.path.join(out_dir, "text.onnx"), so, providers=["CPUExecutionProvider"])

    def norm(a):
        return a / np.linalg.norm(a, axis=-1, keepdims=True)

    mean = np.asarray(MEAN, np.float32)[:, None, None]
    std = np.asarray(STD, np.float32)[:, None, None]
    solid = []
    for _, h in PROTOTYPES:
        rgb = np.asarray([int(h[i:i + 2], 16) for i in (0, 2, 4)], np.float32) / 255.0
        x = np.broadcast_to(rgb[:, None, None], (3, IMAGE_SIZE, IMAGE_SIZE))
        solid.append((x - mean) / std)
    pix = np.stack(solid).astype(np.float32)
    ie = img.run(["image_embeds"], {"pixel_values": pix})[0]
    assert ie.shape == (len(PROTOTYPES), DIM), ie.shape

    words = [w for w, _, _ in kept]
    prompts = [f"a {w} scene" for w in words] + ["a scene"]
    ids = np.asarray([clip_tokenize(tok, p) for p in prompts], np.int64)
    te = txt.run(["text_embeds"], {"input_ids": ids})[0]
    assert te.shape == (len(prompts), DIM), te.shape
    assert np.linalg.norm(te[-1]) > 0.04, "no-colour sentence must be non-zero"

    sim = norm(ie) @ norm(te[:-1]).T  # [K, W]
    word_proto = {w: PROTOTYPES[k][0] for w, _, k in kept}
    print(f"\nself-test: solid-colour image vs 'a <word> scene' (cosine), {len(words)} words")
    print(f"  {'image':8s} {'top word':10s} {'cos':>6s}  {'best other colour':18s} {'cos':>6s}  ok")
    failures = 0
    for k, (name, _) in enumerate(PROTOTYPES):
        order = np.argsort(-sim[k], kind="stable")
        top = words[order[0]]
        other = next(i for i in order if word_proto[words[i]] != name)
        has_word = name in word_proto.values()
        ok = (word_proto[top] == name) if has_word else True
        failures += not ok
        mark = "yes" if has_word and ok else ("n/a (no word)" if not has_word else "NO")
        print(f"  {name:8s} {top:10s} {sim[k, order[0]]:6.3f}  "
              f"{words[other] + ' (' + word_proto[words[other]] + ')':18s} {sim[k, other]:6.3f}  {mark}")
    # spot-check: red/green/blue images must rank their own word first
    for name in ("red", "green", "blue"):
        k = [n for n, _ in PROTOTYPES].index(name)
        assert word_proto[words[int(np.argmax(sim[k]))]] == name, name
    # dynamic batch: N=1 and N=3 work
    for n in (1, 3):
        assert img.run(None, {"pixel_values": pix[:n]})[0].shape == (n, DIM)
        assert txt.run(None, {"input_ids": ids[:n]})[0].shape == (n, DIM)
    if failures:
        sys.exit(f"self-test failed for {failures} colours")
    print("self-test passed")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT, help="output directory (default models/tiny)")
    ap.add_argument("--check", action="store_true",
                    help="regenerate into a temp dir and compare bytes with --out; exit 1 on difference")
    ap.add_argument("--no-test", action="store_true", help="skip the onnxruntime self-test")
    args = ap.parse_args()
    tok = load_clip_tokenizer()

    if args.check:
        tmp = tempfile.mkdtemp(prefix="busca-tiny-")
        try:
            generate(tmp, tok)
            bad = []
            for name in ("image.onnx", "text.onnx", "manifest.json"):
                mine = os.path.join(args.out, name)
                new = open(os.path.join(tmp, name), "rb").read()
                old = open(mine, "rb").read() if os.path.exists(mine) else None
                if old != new:
                    bad.append(name)
            if bad:
                print("tiny models differ from a fresh generation: " + ", ".join(bad))
                sys.exit(1)
            print(f"tiny models in {args.out} are up to date")
        finally:
            shutil.rmtree(tmp)
        return

    kept = generate(args.out, tok, verbose=True)
    for name in ("image.onnx", "text.onnx", "manifest.json"):
        p = os.path.join(args.out, name)
        print(f"wrote {p} ({os.path.getsize(p)} bytes)")
    if not args.no_test:
        self_test(args.out, tok, kept)


if __name__ == "__main__":
    main()
