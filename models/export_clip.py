#!/usr/bin/env python3
"""Export OpenAI CLIP ViT-L/14 (image + text towers) to ONNX for BuscaEscenas.

Writes to ``--out DIR``:

* ``image.onnx``: ``pixel_values`` float32 [N,3,224,224] -> ``image_embeds`` float32 [N,768]
  (transformers ``CLIPVisionModelWithProjection``; CLIP-normalised input).
* ``text.onnx``: ``input_ids`` int64 [N,77] -> ``text_embeds`` float32 [N,768]
  (``CLIPTextModelWithProjection``; only ``input_ids``, OpenAI ``clip.tokenize``
  layout: 49406, tokens..., 49407, then 0-padding; no attention mask needed because
  CLIP's text tower is causal and pools at the end-of-text token).
* ``manifest.json``: the BuscaEscenas model manifest (same format as models/tiny).
* with ``--fp16``: ``image_fp16.onnx`` (float16 weights, float32 inputs/outputs)
  and ``manifest.fp16.json`` pointing at it (model_id suffixed ``-fp16``).

Embeddings are NOT L2-normalised (consumers normalise). Dynamic batch axis ``N``,
opset 17. A tower over ~1.8 GB of weights is saved with external data
(``<file>.data`` next to it); ViT-L/14 towers (~1.2 GB and ~0.5 GB) fit in one file.

Modes:

* default: real weights, ``from_pretrained("openai/clip-vit-large-patch14")``.
  NEEDS INTERNET (Hugging Face Hub) the first time - run it on a machine that
  has it, then copy ``--out`` over. Nothing else in this project downloads weights.
* ``--random-weights``: identical architecture built from CLIPVisionConfig /
  CLIPTextConfig with the ViT-L/14 hyperparameters written out below,
  ``torch.manual_seed(0)``, ``HF_HUB_OFFLINE=1``: downloads nothing. Useful to
  test the pipeline (sizes, speed, shapes) without the real weights; the
  embeddings are meaningless, and model_id is ``openai-clip-vit-large-patch14-random``.

Requirements: ``models/requirements-export.txt`` (torch, transformers, onnx,
onnxscript, onnxruntime), in a separate venv.

Usage::

    python models/export_clip.py --out ~/.cache/buscaescenas/models/clip-vit-l14
    python models/export_clip.py --random-weights --out /tmp/clip-random [--fp16]
"""

import argparse
import json
import os
import sys
import time

import model_manifest
import onnx_export

HF_REPO = "openai/clip-vit-large-patch14"
MODEL_ID = "openai-clip-vit-large-patch14"
# --random-weights exports get a different model_id so that an index built
# with them can never be mistaken for one built with the real weights.
RANDOM_MODEL_ID = MODEL_ID + "-random"
EMBED_DIM = 768
IMAGE_SIZE = 224
CONTEXT_LENGTH = 77
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]

# ViT-L/14 hyperparameters (as in openai/clip-vit-large-patch14 config.json)
VISION_CONFIG = dict(
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=24,
    num_attention_heads=16,
    num_channels=3,
    patch_size=14,
    image_size=224,
    projection_dim=768,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
)
TEXT_CONFIG = dict(
    vocab_size=49408,
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    max_position_embeddings=77,
    projection_dim=768,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
    # The released config has these (pre-PR-#24773) ids; eos_token_id == 2 makes
    # transformers pool at argmax(input_ids) == the 49407 end-of-text token,
    # exactly what OpenAI's CLIP does, and it is independent of the pad value.
    bos_token_id=0,
    eos_token_id=2,
    pad_token_id=1,
)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--random-weights", action="store_true",
                    help="random init of the ViT-L/14 architecture, no download at all")
    ap.add_argument("--fp16", action="store_true",
                    help="also write image_fp16.onnx (fp16 weights, fp32 I/O) + manifest.fp16.json")
    ap.add_argument("--hf-repo", default=HF_REPO, help=f"Hugging Face repo (default {HF_REPO})")
    ap.add_argument("--exporter", choices=["torchscript", "dynamo"], default="torchscript",
                    help="torch.onnx exporter (default torchscript: native opset 17)")
    ap.add_argument("--only", choices=["image", "text"], help="export a single tower")
    ap.add_argument("--num-layers", type=int,
                    help="(smoke tests only, with --random-weights) override layer counts")
    ap.add_argument("--no-verify", action="store_true", help="skip the onnxruntime check")
    return ap.parse_args()


def load_models(args):
    import torch
    from transformers import (CLIPTextConfig, CLIPTextModelWithProjection,
                              CLIPVisionConfig, CLIPVisionModelWithProjection)

    towers = {}
    if args.random_weights:
        torch.manual_seed(0)
        vcfg, tcfg = dict(VISION_CONFIG), dict(TEXT_CONFIG)
        if args.num_layers:
            vcfg["num_hidden_layers"] = tcfg["num_hidden_layers"] = args.num_layers
        if args.only != "text":
            cfg = CLIPVisionConfig(**vcfg)
            cfg._attn_implementation = "eager"
            towers["image"] = CLIPVisionModelWithProjection(cfg)
        if args.only != "image":
            cfg = CLIPTextConfig(**tcfg)
            cfg._attn_implementation = "eager"
            towers["text"] = CLIPTextModelWithProjection(cfg)
    else:
        # Needs internet (or a populated HF cache). Eager attention exports cleanly.
        if args.only != "text":
            towers["image"] = CLIPVisionModelWithProjection.from_pretrained(
                args.hf_repo, attn_implementation="eager")
        if args.only != "image":
            towers["text"] = CLIPTextModelWithProjection.from_pretrained(
                args.hf_repo, attn_implementation="eager")
    for m in towers.values():
        m.eval()
    return towers


def dummy_ids(n, seed=0):
    """[n,77] int64 in clip.tokenize layout: SOT, random tokens, EOT, zero padding."""
    import torch
    g = torch.Generator().manual_seed(seed)
    ids = torch.zeros(n, CONTEXT_LENGTH, dtype=torch.int64)
    for i in range(n):
        k = 3 + 7 * i
        ids[i, 0] = 49406
        ids[i, 1:k + 1] = torch.randint(1, 49406, (k,), generator=g)
        ids[i, k + 1] = 49407
    return ids


def tower_module(kind, model):
    """``x -> embeds`` of a CLIP tower: the one input and output exported."""
    import torch

    class Tower(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, x):
            if kind == "image":
                return self.m(pixel_values=x).image_embeds
            return self.m(input_ids=x).text_embeds

    return Tower().eval()


def io_names(kind):
    return ("pixel_values", "image_embeds") if kind == "image" else ("input_ids", "text_embeds")


def export_tower(kind, model, path, exporter, model_id):
    import torch
    if kind == "image":
        example = torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(0))
    else:
        example = dummy_ids(2)
    in_name, out_name = io_names(kind)
    dt, ref, external = onnx_export.export(tower_module(kind, model), example, path, in_name, out_name,
                                           f"{model_id}-{kind}", exporter)
    return dt, example.numpy(), ref, external


def to_fp16(src, dst, graph_name):
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    t0 = time.time()
    m = onnx.load(src)
    m16 = convert_float_to_float16(m, keep_io_types=True)
    m16.graph.name = graph_name
    onnx.save_model(m16, dst)
    return time.time() - t0


ABOUT = {
    "en": ("OpenAI CLIP ViT-L/14{random}. Trained on English image captions: it understands English "
           "descriptions of objects, people, actions and places. Text in other languages (Spanish "
           "included) is close to noise for its text model; add a multilingual text model trained "
           "into the same image space for those."),
    "es": ("OpenAI CLIP ViT-L/14{random}. Entrenado con pies de foto en inglés: entiende descripciones "
           "en inglés de objetos, personas, acciones y lugares. Un texto en otro idioma (también en "
           "español) es casi ruido para su modelo de texto; para ello hace falta un modelo de texto "
           "multilingüe entrenado en el mismo espacio de imagen."),
}
RANDOM_NOTE = {
    "en": " with RANDOM weights (--random-weights): right architecture and speed, meaningless results",
    "es": " con pesos ALEATORIOS (--random-weights): arquitectura y velocidad reales, resultados sin sentido",
}


def manifest(out_dir, model_id, image_file, image_graph, text_graph, random_weights=False):
    about = {lang: text.format(random=RANDOM_NOTE[lang] if random_weights else "") for lang, text in ABOUT.items()}
    image = model_manifest.image_tower(out_dir, image_file, image_graph, IMAGE_SIZE, MEAN, STD)
    text = model_manifest.text_tower(out_dir, "clip", ["en"], "text.onnx", text_graph, CONTEXT_LENGTH, 0)
    return model_manifest.manifest(model_id, about, EMBED_DIM, image, [text])


def main():
    args = parse_args()
    if args.random_weights:
        onnx_export.offline()  # guarantee that nothing is fetched from the Hub
    elif args.num_layers:
        sys.exit("--num-layers only makes sense with --random-weights")
    model_id = RANDOM_MODEL_ID if args.random_weights else MODEL_ID
    out = os.path.abspath(os.path.expanduser(args.out))
    os.makedirs(out, exist_ok=True)

    import torch
    torch.set_grad_enabled(False)
    t_all = time.time()
    t0 = time.time()
    towers = load_models(args)
    print(f"loaded {'random' if args.random_weights else args.hf_repo} towers "
          f"{sorted(towers)} in {time.time() - t0:.1f}s")
    for kind, model in towers.items():
        path = os.path.join(out, f"{kind}.onnx")
        dt, x, ref, external = export_tower(kind, model, path, args.exporter, model_id)
        in_name, out_name = io_names(kind)
        onnx_export.report(kind, model, path, dt, external,
                           None if args.no_verify else onnx_export.verify(path, in_name, out_name, x, ref, EMBED_DIM))
        if kind == "image" and args.fp16:
            p16 = os.path.join(out, "image_fp16.onnx")
            dt16 = to_fp16(path, p16, f"{model_id}-fp16-image")
            print(f"image fp16: converted in {dt16:.1f}s -> {p16} ({onnx_export.file_size(p16) / 1e6:.1f} MB)")
            if not args.no_verify:
                shape, err, cos, rt = onnx_export.verify(p16, "pixel_values", "image_embeds", x, ref, EMBED_DIM)
                print(f"  onnxruntime fp16: batch 2 -> {list(shape)} in {rt:.2f}s, max |fp16 - torch| = "
                      f"{err:.2e}, min cosine = {cos:.6f}")
        del model
        towers[kind] = None

    if args.only is None:
        with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
            f.write(json.dumps(manifest(out, model_id, "image.onnx", f"{model_id}-image",
                                        f"{model_id}-text", args.random_weights),
                               indent=2, ensure_ascii=False) + "\n")
        if args.fp16:
            with open(os.path.join(out, "manifest.fp16.json"), "w", encoding="utf-8") as f:
                # same text tower (graph "<model_id>-text"), fp16 image tower
                f.write(json.dumps(manifest(out, model_id + "-fp16", "image_fp16.onnx",
                                            f"{model_id}-fp16-image", f"{model_id}-text", args.random_weights),
                                   indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {os.path.join(out, 'manifest.json')}")
    print(f"total {time.time() - t_all:.1f}s")


if __name__ == "__main__":
    main()
