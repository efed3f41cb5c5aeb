#!/usr/bin/env python3
"""Export Google's SigLIP 2 (base, patch 16, 224 px; image + text towers) to
ONNX for BuscaEscenas: a model whose text tower is multilingual by itself and
whose scores are probabilities (a sigmoid of the scaled cosine plus a bias).

Writes to ``--out DIR``:

* ``image.onnx``: ``pixel_values`` float32 [N,3,224,224] -> ``image_embeds``
  [N,768] (the attention-pooled vision output). SigLIP's preprocessing, which
  the manifest records: the whole frame squashed to 224 x 224 with bilinear
  (no crop), mean = std = 0.5.
* ``text.onnx``: ``input_ids`` int64 [N,64] -> ``text_embeds`` [N,768] (the
  last position's state through the head: SigLIP pads every text to 64).
* ``siglip2.tokenizer.json``: the Gemma SentencePiece tokenizer, with a
  lowercasing step put in front (SigLIP 2 was trained on lowercased text).
* ``manifest.json``: ``score`` = sigmoid with the model's own scale
  (exp(logit_scale)) and bias.

Modes:

* default: real weights, ``google/siglip2-base-patch16-224``. NEEDS INTERNET
  (Hugging Face Hub) the first time: run it where there is some, then copy
  ``--out`` over.
* ``--random-weights``: the same architecture with random weights, SigLIP's
  initial scale and bias (10, -10), and the tiny multilingual Unigram
  tokenizer of models/tiny as a stand-in (Gemma's is a download). Downloads
  nothing; sizes and speed are real, rankings are noise, and the manifest's
  description says so.

Usage::

    python models/export_siglip2.py --out ~/.cache/buscaescenas/models/siglip2-base
    python models/export_siglip2.py --random-weights --out ~/.cache/buscaescenas/models/siglip2-base-random
"""

import json
import math
import os
import shutil
import time

import model_manifest
import onnx_export

HF_REPO = "google/siglip2-base-patch16-224"
MODEL_ID = "google-siglip2-base-patch16-224"
RANDOM_MODEL_ID = MODEL_ID + "-random"
EMBED_DIM = 768
IMAGE_SIZE = 224
CONTEXT_LENGTH = 64
MEAN = STD = [0.5, 0.5, 0.5]
TOKENIZER_FILE = "siglip2.tokenizer.json"
HERE = os.path.dirname(os.path.abspath(__file__))
STAND_IN_TOKENIZER = os.path.join(HERE, "tiny", "multilingual.tokenizer.json")
STAND_IN_PAD_ID = 1  # <pad> of the stand-in tokenizer

# google/siglip2-base-patch16-224's config.json
VISION_CONFIG = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                     num_channels=3, image_size=IMAGE_SIZE, patch_size=16, hidden_act="gelu_pytorch_tanh",
                     layer_norm_eps=1e-6)
TEXT_CONFIG = dict(vocab_size=256000, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                   num_attention_heads=12, max_position_embeddings=CONTEXT_LENGTH, hidden_act="gelu_pytorch_tanh",
                   layer_norm_eps=1e-6, pad_token_id=0, projection_size=768)

ABOUT = {
    "en": ("Google SigLIP 2 base, 224 px{random}. Trained on image-text pairs in many languages (Spanish "
           "included), so one text model serves them all. Its scores are probabilities that a shot matches "
           "(a sigmoid with the model's own scale and bias), comparable across queries. It is smaller than "
           "ViT-L/14 and misses fine detail it would see; an index built with it needs its own queries "
           "(another image space than CLIP's)."),
    "es": ("Google SigLIP 2 base, 224 px{random}. Entrenado con pares de imagen y texto en muchos idiomas "
           "(también en español), así que un solo modelo de texto sirve para todos. Sus puntuaciones son "
           "probabilidades de que un plano coincida (una sigmoide con la escala y el sesgo del propio modelo), "
           "comparables entre consultas. Es más pequeño que ViT-L/14 y se le escapan detalles finos; un índice "
           "hecho con él necesita sus propias consultas (otro espacio de imagen que el de CLIP)."),
}
RANDOM_NOTE = {
    "en": " with RANDOM weights and a stand-in tokenizer (--random-weights): real architecture and speed, "
          "meaningless results",
    "es": " con pesos ALEATORIOS y un tokenizador de relleno (--random-weights): arquitectura y velocidad "
          "reales, resultados sin sentido",
}
LANGUAGES = ["*"]


def load(args):
    """(SiglipModel, scale, bias)."""
    import torch
    from transformers import SiglipConfig, SiglipModel

    if args.random_weights:
        torch.manual_seed(0)
        vcfg, tcfg = dict(VISION_CONFIG), dict(TEXT_CONFIG)
        if args.num_layers:
            vcfg["num_hidden_layers"] = tcfg["num_hidden_layers"] = args.num_layers
        config = SiglipConfig(vision_config=vcfg, text_config=tcfg)
        config._attn_implementation = "eager"
        model = SiglipModel(config).eval()
        return model, 10.0, -10.0  # SigLIP's initial logit scale and bias
    model = SiglipModel.from_pretrained(HF_REPO, attn_implementation="eager").eval()
    return model, math.exp(float(model.logit_scale)), float(model.logit_bias)


def tower_module(kind, model):
    import torch

    class Tower(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model.vision_model if kind == "image" else model.text_model

        def forward(self, x):
            if kind == "image":
                return self.m(pixel_values=x).pooler_output
            return self.m(input_ids=x).pooler_output

    return Tower().eval()


def write_tokenizer(args, path):
    """(pad id) Gemma's tokenizer.json lowercasing first, truncated to 64;
    the component pads to 64 with the manifest's pad_id, as SigLIP expects."""
    if args.random_weights:
        shutil.copyfile(STAND_IN_TOKENIZER, path)
        return STAND_IN_PAD_ID
    from tokenizers import Tokenizer, normalizers
    from transformers import AutoTokenizer
    fast = AutoTokenizer.from_pretrained(HF_REPO)
    tok = fast.backend_tokenizer
    lower = normalizers.Lowercase()
    tok.normalizer = lower if tok.normalizer is None else normalizers.Sequence([lower, tok.normalizer])
    tok.no_padding()
    tok.enable_truncation(CONTEXT_LENGTH)
    tok.save(path)
    Tokenizer.from_file(path)  # reads back
    return fast.pad_token_id


def example_ids(path, pad_id):
    import torch
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(path)
    rows = []
    for text in ["workers digging trenches", "chicos y chicas en una discoteca en los años 60"]:
        ids = tok.encode(text).ids[:CONTEXT_LENGTH]
        rows.append(ids + [pad_id] * (CONTEXT_LENGTH - len(ids)))
    return torch.tensor(rows, dtype=torch.int64)


def main():
    args = onnx_export.parse_args(__doc__, "--out", "output directory")
    model_id = RANDOM_MODEL_ID if args.random_weights else MODEL_ID
    out = os.path.abspath(os.path.expanduser(args.out))
    os.makedirs(out, exist_ok=True)

    import torch
    torch.set_grad_enabled(False)
    t0 = time.time()
    model, scale, bias = load(args)
    tok_path = os.path.join(out, TOKENIZER_FILE)
    pad_id = write_tokenizer(args, tok_path)
    print(f"loaded {'random' if args.random_weights else HF_REPO} in {time.time() - t0:.1f}s "
          f"(score: sigmoid({scale:.3f} * cos + {bias:.3f}))")
    examples = {
        "image": torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(0)),
        "text": example_ids(tok_path, pad_id),
    }
    for kind, (in_name, out_name) in {"image": ("pixel_values", "image_embeds"),
                                      "text": ("input_ids", "text_embeds")}.items():
        module = tower_module(kind, model)
        path = os.path.join(out, f"{kind}.onnx")
        x = examples[kind]
        dt, ref, external = onnx_export.export(module, x, path, in_name, out_name, f"{model_id}-{kind}")
        onnx_export.report(kind, module, path, dt, external,
                           None if args.no_verify else onnx_export.verify(path, in_name, out_name, x.numpy(), ref,
                                                                          EMBED_DIM))
    random = RANDOM_NOTE if args.random_weights else {"en": "", "es": ""}
    about = {lang: text.format(random=random[lang]) for lang, text in ABOUT.items()}
    image = model_manifest.image_tower(out, "image.onnx", f"{model_id}-image", IMAGE_SIZE, MEAN, STD,
                                       resize="squash-bilinear", crop="none")
    text = model_manifest.text_tower(out, "siglip2", LANGUAGES, "text.onnx", f"{model_id}-text", CONTEXT_LENGTH,
                                     pad_id, tokenizer_file=TOKENIZER_FILE)
    manifest = model_manifest.manifest(model_id, about, EMBED_DIM, image, [text],
                                       score=model_manifest.sigmoid_score(scale, bias))
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {os.path.join(out, 'manifest.json')}")


if __name__ == "__main__":
    main()
