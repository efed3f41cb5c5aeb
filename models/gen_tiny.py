#!/usr/bin/env python3
"""Generate the tiny, deterministic, CLIP-shaped "colour" models.

Two families, each a model directory with its ``manifest.json``:

* ``models/tiny/`` (``tiny-colour-v1``, 768-d): ``image.onnx``, ``text.onnx``
  (CLIP BPE tokens, English) and ``text-multilingual.onnx`` with
  ``multilingual.tokenizer.json`` (a SentencePiece Unigram tokenizer trained
  here on ``models/corpus/tiny-es-en.txt``), in which Spanish colour words land
  where the English ones do: the multilingual text tower of the same index.
* ``models/tiny-24/`` (``tiny-colour-24-v1``, 24-d): the same image model in
  24 dimensions whose only text tower uses the Unigram tokenizer, so the whole
  test suite can run on a model with another dimension and tokenizer kind.

The models have exactly the interface of a real CLIP
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

The Unigram tokenizer: ``tokenizers``' UnigramTrainer picks the pieces (the
same set on every run); the trainer's scores differ in their last bits between
runs, so the scores written are the pieces' log frequencies in the corpus,
rounded, and the colour words are added as whole pieces (SentencePiece's
user-defined symbols). That keeps the file byte-reproducible.

Built with onnx.helper only (opset 17, ir_version 8); no torch, no downloads.
Fully deterministic: regenerating gives byte-identical files.

Needs (project venv /root/.cache/buscaescenas/venv): numpy, onnx, onnxruntime
(only for the self-test), ftfy, regex and ``pip install --no-deps
openai-clip==1.0.1`` (reference tokenizer; its ``clip/__init__`` imports torch,
so only ``clip/simple_tokenizer.py`` is loaded, by file path).

Usage::

    python models/gen_tiny.py            # write models/tiny/*, models/tiny-24/* and self-test
    python models/gen_tiny.py --check    # regenerate in a temp dir, exit 1 if bytes differ
    python models/gen_tiny.py --out DIR  # write elsewhere (DIR/tiny, DIR/tiny-24)
"""

import argparse
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

import model_manifest

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = HERE
CORPUS = os.path.join(HERE, "corpus", "tiny-es-en.txt")

MODEL_ID = "tiny-colour-v1"
DIM = 768
SMALL_MODEL_ID = "tiny-colour-24-v1"
SMALL_DIM = 24
IMAGE_SIZE = 224
CONTEXT_LENGTH = 77
UNIGRAM_CONTEXT_LENGTH = 32
UNIGRAM_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]  # ids 0-3, XLM-R's layout
UNIGRAM_PAD_ID = 1
UNIGRAM_LANGUAGES = ["es", "en"]
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

# The multilingual tower's colour words: every one is a whole Unigram piece.
UNIGRAM_COLOUR_WORDS = [
    ("red", "red"), ("green", "green"), ("blue", "blue"), ("yellow", "yellow"),
    ("cyan", "cyan"), ("magenta", "magenta"), ("white", "white"),
    ("black", "black"), ("gray", "gray"), ("grey", "gray"),
    ("orange", "orange"), ("purple", "purple"), ("pink", "pink"),
    ("brown", "brown"),
    ("rojo", "red"), ("roja", "red"), ("rojos", "red"), ("rojas", "red"),
    ("verde", "green"), ("verdes", "green"), ("azul", "blue"), ("azules", "blue"),
    ("amarillo", "yellow"), ("amarilla", "yellow"), ("cian", "cyan"),
    ("blanco", "white"), ("blanca", "white"), ("negro", "black"), ("negra", "black"),
    ("gris", "gray"), ("naranja", "orange"), ("morado", "purple"), ("morada", "purple"),
    ("rosa", "pink"), ("marrón", "brown"),
]

ABOUT = {
    "en": ("Tiny colour model, generated by models/gen_tiny.py for the tests and the demo. "
           "It sees only the mean colour of a picture and knows 13 colour words "
           "({languages}). It does not understand objects, people, actions or places: "
           "\"workers digging trenches\" gets guesses. Index with a CLIP model "
           "(models/export_clip.py) for real searches."),
    "es": ("Modelo de colores diminuto, generado por models/gen_tiny.py para las pruebas y la "
           "demostración. Solo ve el color medio de la imagen y conoce 13 palabras de color "
           "({languages_es}). No entiende objetos, personas, acciones ni lugares: "
           "«obreros cavando zanjas» devuelve resultados al azar. Para búsquedas reales, "
           "indexe con un modelo CLIP (models/export_clip.py)."),
}


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


def build_image_model(protos_rgb01, P, graph_name):
    K, dim = P.shape
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
        nodes, graph_name,
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["N", 3, IMAGE_SIZE, IMAGE_SIZE])],
        [helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["N", dim])],
        initializer=inits,
        value_info=[
            helper.make_tensor_value_info("mean_rgb", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("weights", TensorProto.FLOAT, ["N", K]),
        ],
    )
    return _model(graph, "Tiny colour model (image tower): mean colour -> soft prototype "
                         "assignment -> orthonormal prototype embeddings. Not L2-normalised.")


def build_text_model(token_ids, word_to_proto, P, g, graph_name, context_length):
    W = len(token_ids)
    dim = P.shape[1]
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
        nodes, graph_name,
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["N", context_length])],
        [helper.make_tensor_value_info("text_embeds", TensorProto.FLOAT, ["N", dim])],
        initializer=inits,
        value_info=[helper.make_tensor_value_info("counts", TensorProto.FLOAT, ["N", W])],
    )
    return _model(graph, "Tiny colour model (text tower): colour-word token counts -> "
                         "prototype embeddings + 0.05 * generic vector. Not L2-normalised.")


# --------------------------------------------------------------------------
# the multilingual Unigram tokenizer
# --------------------------------------------------------------------------

def _unigram_shell(model):
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    tok = Tokenizer(model)
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    return tok


def train_unigram():
    """The tiny multilingual tokenizer, as tokenizer.json bytes (see the module doc)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from tokenizers import models, trainers
    tok = _unigram_shell(models.Unigram())
    trainer = trainers.UnigramTrainer(vocab_size=400, special_tokens=UNIGRAM_SPECIALS, unk_token="<unk>",
                                      show_progress=False, max_piece_length=12)
    tok.train([CORPUS], trainer)
    trained = {piece for piece, _ in json.loads(tok.to_str())["model"]["vocab"]} - set(UNIGRAM_SPECIALS)
    pieces = sorted(trained | {"\u2581" + w for w, _ in UNIGRAM_COLOUR_WORDS})
    # Scores: log frequency of the piece in the corpus as the tokenizer sees
    # it (normalised, words prefixed with U+2581), add-one smoothed, rounded.
    with open(CORPUS, encoding="utf-8") as f:
        text = "".join("\u2581" + word for line in f for word in tok.normalizer.normalize_str(line).split())
    total = len(text)
    vocab = [(special, 0.0) for special in UNIGRAM_SPECIALS]
    vocab += sorted(((p, round(math.log((text.count(p) + 1) / total) + 0.5 * len(p), 4)) for p in pieces),
                    key=lambda ps: (-ps[1], ps[0]))
    final = _unigram_shell(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    return json.dumps(json.loads(final.to_str()), ensure_ascii=False, indent=1, sort_keys=True).encode() + b"\n"


def load_unigram(data):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_str(data.decode())
    tok.enable_truncation(max_length=UNIGRAM_CONTEXT_LENGTH)
    tok.enable_padding(length=UNIGRAM_CONTEXT_LENGTH, pad_id=UNIGRAM_PAD_ID, pad_token="<pad>")
    return tok


def unigram_colour_vocab(tok):
    """[(word, token_id, prototype_index)]: every word must be one piece."""
    proto_index = {name: k for k, (name, _) in enumerate(PROTOTYPES)}
    kept = []
    for word, proto in UNIGRAM_COLOUR_WORDS:
        ids = tok.encode(word, add_special_tokens=False).ids
        ids = [i for i in ids if i != UNIGRAM_PAD_ID]
        assert len(ids) == 1, f"{word!r} is not one Unigram piece: {ids}"
        kept.append((word, ids[0], proto_index[proto]))
    assert len({t for _, t, _ in kept}) == len(kept), "duplicate token ids"
    return kept


# --------------------------------------------------------------------------

def write_manifest(out_dir, model_id, dim, text_towers, colours, languages):
    about = {
        "en": ABOUT["en"].format(languages=languages["en"]),
        "es": ABOUT["es"].format(languages_es=languages["es"]),
    }
    image = model_manifest.image_tower(out_dir, "image.onnx", f"{model_id}-image", IMAGE_SIZE, MEAN, STD)
    manifest = model_manifest.manifest(model_id, about, dim, image, text_towers, colours=colours)
    with open(os.path.join(out_dir, "manifest.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


def clip_tower(out_dir, model_id):
    return model_manifest.text_tower(out_dir, "clip", ["en"], "text.onnx", f"{model_id}-text", CONTEXT_LENGTH, 0)


def unigram_tower(out_dir, model_id, file, graph_suffix, tokenizer_file):
    return model_manifest.text_tower(out_dir, "multilingual", UNIGRAM_LANGUAGES, file, f"{model_id}-{graph_suffix}",
                                     UNIGRAM_CONTEXT_LENGTH, UNIGRAM_PAD_ID, tokenizer_file)


def colour_matrix(kept):
    M = np.zeros((len(kept), len(PROTOTYPES)), np.float32)
    for i, (_, _, k) in enumerate(kept):
        M[i, k] = 1.0
    return M


def save(model, path):
    with open(path, "wb") as f:
        f.write(model.SerializeToString(deterministic=True))


# Files each family directory holds (what --check compares).
FAMILY_FILES = {
    "tiny": ["image.onnx", "text.onnx", "text-multilingual.onnx", "multilingual.tokenizer.json", "manifest.json"],
    "tiny-24": ["image.onnx", "text.onnx", "tokenizer.json", "manifest.json"],
}


def generate(out_root, tok, verbose=False):
    """Writes both families under out_root; returns what the self-test needs."""
    kept, dropped = colour_vocab(tok)
    if verbose:
        print("colour words kept (word -> token id -> prototype):")
        for w, t, k in kept:
            print(f"  {w:10s} {t:6d} {PROTOTYPES[k][0]}")
        print("colour words dropped (not a single BPE token):")
        for w, ids in dropped:
            print(f"  {w:10s} {ids}")
    unigram_json = train_unigram()
    unigram = load_unigram(unigram_json)
    ukept = unigram_colour_vocab(unigram)

    K = len(PROTOTYPES)
    rgb255 = np.asarray([[int(h[i:i + 2], 16) for i in (0, 2, 4)] for _, h in PROTOTYPES])
    protos = (rgb255 / 255.0).astype(np.float32)
    colours = {name: [int(v) for v in rgb255[k]] for k, (name, _) in enumerate(PROTOTYPES)}
    ids_of = lambda ks: [t for _, t, _ in ks]

    # tiny-colour-v1: 768-d, CLIP BPE tower (default) + multilingual tower.
    big = os.path.join(out_root, "tiny")
    os.makedirs(big, exist_ok=True)
    basis = orthonormal_vectors(K + 1, DIM, SEED)
    P, g = basis[:K], basis[K]
    save(build_image_model(protos, P, f"{MODEL_ID}-image"), os.path.join(big, "image.onnx"))
    save(build_text_model(ids_of(kept), colour_matrix(kept), P, g, f"{MODEL_ID}-text", CONTEXT_LENGTH),
         os.path.join(big, "text.onnx"))
    save(build_text_model(ids_of(ukept), colour_matrix(ukept), P, g, f"{MODEL_ID}-text-multilingual",
                          UNIGRAM_CONTEXT_LENGTH), os.path.join(big, "text-multilingual.onnx"))
    with open(os.path.join(big, "multilingual.tokenizer.json"), "wb") as f:
        f.write(unigram_json)
    write_manifest(big, MODEL_ID, DIM, [
        clip_tower(big, MODEL_ID),
        unigram_tower(big, MODEL_ID, "text-multilingual.onnx", "text-multilingual", "multilingual.tokenizer.json"),
    ], colours, {"en": "in English; in Spanish through its multilingual text model",
                 "es": "en inglés; en español mediante su modelo de texto multilingüe"})

    # tiny-colour-24-v1: 24-d, the Unigram tower only.
    small = os.path.join(out_root, "tiny-24")
    os.makedirs(small, exist_ok=True)
    basis = orthonormal_vectors(K + 1, SMALL_DIM, SEED)
    P, g = basis[:K], basis[K]
    save(build_image_model(protos, P, f"{SMALL_MODEL_ID}-image"), os.path.join(small, "image.onnx"))
    save(build_text_model(ids_of(ukept), colour_matrix(ukept), P, g, f"{SMALL_MODEL_ID}-text",
                          UNIGRAM_CONTEXT_LENGTH), os.path.join(small, "text.onnx"))
    with open(os.path.join(small, "tokenizer.json"), "wb") as f:
        f.write(unigram_json)
    write_manifest(small, SMALL_MODEL_ID, SMALL_DIM, [
        unigram_tower(small, SMALL_MODEL_ID, "text.onnx", "text", "tokenizer.json"),
    ], colours, {"en": "in English and Spanish", "es": "en español y en inglés"})
    return kept, unigram, ukept


# --------------------------------------------------------------------------
# self-test with onnxruntime
# --------------------------------------------------------------------------

def self_test(out_root, tok, kept, unigram, ukept):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1

    def session(*parts):
        return ort.InferenceSession(os.path.join(out_root, *parts), so, providers=["CPUExecutionProvider"])

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

    def unigram_ids(prompts):
        return np.asarray([e.ids for e in unigram.encode_batch(prompts)], np.int64)

    cases = [
        ("tiny: CLIP BPE tower", ("tiny", "image.onnx"), ("tiny", "text.onnx"), kept,
         lambda ps: np.asarray([clip_tokenize(tok, p) for p in ps], np.int64), "a {} scene", DIM),
        ("tiny: multilingual tower", ("tiny", "image.onnx"), ("tiny", "text-multilingual.onnx"), ukept,
         unigram_ids, "una escena {}", DIM),
        ("tiny-24", ("tiny-24", "image.onnx"), ("tiny-24", "text.onnx"), ukept, unigram_ids, "a {} scene", SMALL_DIM),
    ]
    failures = 0
    for title, image_file, text_file, words_kept, tokenize, template, dim in cases:
        img, txt = session(*image_file), session(*text_file)
        ie = img.run(["image_embeds"], {"pixel_values": pix})[0]
        assert ie.shape == (len(PROTOTYPES), dim), ie.shape
        words = [w for w, _, _ in words_kept]
        prompts = [template.format(w) for w in words] + ["a scene"]
        ids = tokenize(prompts)
        te = txt.run(["text_embeds"], {"input_ids": ids})[0]
        assert te.shape == (len(prompts), dim), te.shape
        assert np.linalg.norm(te[-1]) > 0.04, "no-colour sentence must be non-zero"
        sim = norm(ie) @ norm(te[:-1]).T  # [K, W]
        word_proto = {w: PROTOTYPES[k][0] for w, _, k in words_kept}
        print(f"\nself-test {title}: solid-colour image vs '{template}' (cosine), {len(words)} words")
        for k, (name, _) in enumerate(PROTOTYPES):
            top = words[int(np.argmax(sim[k]))]
            has_word = name in word_proto.values()
            ok = (word_proto[top] == name) if has_word else True
            failures += not ok
            print(f"  {name:8s} top {top:10s} {sim[k].max():6.3f}  {'yes' if ok else 'NO'}")
        for n in (1, 3):
            assert img.run(None, {"pixel_values": pix[:n]})[0].shape == (n, dim)
            assert txt.run(None, {"input_ids": ids[:n]})[0].shape == (n, dim)
    # The two towers of tiny-colour-v1 agree across languages.
    clip_txt, ml_txt = session("tiny", "text.onnx"), session("tiny", "text-multilingual.onnx")
    en = clip_txt.run(None, {"input_ids": np.asarray([clip_tokenize(tok, "a red car")], np.int64)})[0]
    es = ml_txt.run(None, {"input_ids": unigram_ids(["un coche rojo"])})[0]
    agreement = float((norm(en) @ norm(es).T)[0, 0])
    print(f"\n'a red car' (CLIP BPE) vs 'un coche rojo' (multilingual): cosine {agreement:.4f}")
    if agreement < 0.99:
        failures += 1
    if failures:
        sys.exit(f"self-test failed ({failures})")
    print("self-test passed")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT, help="output root (default models/): writes OUT/tiny and OUT/tiny-24")
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
            for family, names in FAMILY_FILES.items():
                for name in names:
                    mine = os.path.join(args.out, family, name)
                    new = open(os.path.join(tmp, family, name), "rb").read()
                    old = open(mine, "rb").read() if os.path.exists(mine) else None
                    if old != new:
                        bad.append(f"{family}/{name}")
            if bad:
                print("tiny models differ from a fresh generation: " + ", ".join(bad))
                sys.exit(1)
            print(f"tiny models in {args.out} are up to date")
        finally:
            shutil.rmtree(tmp)
        return

    kept, unigram, ukept = generate(args.out, tok, verbose=True)
    for family, names in FAMILY_FILES.items():
        for name in names:
            p = os.path.join(args.out, family, name)
            print(f"wrote {p} ({os.path.getsize(p)} bytes)")
    if not args.no_test:
        self_test(args.out, tok, kept, unigram, ukept)


if __name__ == "__main__":
    main()
