"""The parts of a BuscaEscenas model manifest (format 2) that the model
scripts write, in one place: ``gen_tiny.py`` and ``export_clip.py`` both build
their ``manifest.json`` from these. The reader, and the description of every
key, is ``core/src/model.rs`` (and models/README.md)."""

import hashlib
import os

FORMAT_VERSION = 2
CLIP_BPE = "openai-clip-bpe-49408"
HF_TOKENIZER_JSON = "hf-tokenizer-json"


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def image_tower(out_dir, file, graph_name, image_size, mean, std,
                resize="shortest-side-bicubic", crop="center"):
    """An image tower. The default fit is CLIP's (shortest side bicubic, centre
    crop); SigLIP's is ``resize="squash-bilinear", crop="none"``."""
    return {
        "file": file,
        "graph_name": graph_name,
        "input": "pixel_values",
        "output": "image_embeds",
        "image_size": image_size,
        "mean": mean,
        "std": std,
        "resize": resize,
        "crop": crop,
        "sha256": sha256_file(os.path.join(out_dir, file)),
    }


def text_tower(out_dir, tower_id, languages, file, graph_name, context_length, pad_id, tokenizer_file=None):
    """A text tower; with ``tokenizer_file`` its tokenizer is that Hugging Face
    tokenizer.json, else CLIP's BPE."""
    tower = {
        "id": tower_id,
        "languages": languages,
        "file": file,
        "graph_name": graph_name,
        "input": "input_ids",
        "output": "text_embeds",
        "context_length": context_length,
        "tokenizer": HF_TOKENIZER_JSON if tokenizer_file else CLIP_BPE,
    }
    if tokenizer_file:
        tower["tokenizer_file"] = tokenizer_file
        tower["tokenizer_sha256"] = sha256_file(os.path.join(out_dir, tokenizer_file))
    tower["pad_id"] = pad_id
    tower["sha256"] = sha256_file(os.path.join(out_dir, file))
    return tower


def sigmoid_score(scale, bias):
    """SigLIP's score: sigmoid(scale * cosine + bias)."""
    return {"kind": "sigmoid", "scale": float(scale), "bias": float(bias)}


def manifest(model_id, about, embedding_dim, image, text, score=None, **extra):
    """The whole manifest: ``about`` maps language codes to what the model is
    and cannot do; ``text`` lists the text towers, the default first;
    ``score`` defaults to cosine."""
    return {
        "format_version": FORMAT_VERSION,
        "model_id": model_id,
        "about": about,
        "embedding_dim": embedding_dim,
        "score": score or {"kind": "cosine"},
        "image": image,
        "text": text,
        **extra,
    }
