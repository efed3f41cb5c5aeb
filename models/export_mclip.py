#!/usr/bin/env python3
"""Add Multilingual-CLIP's XLM-RoBERTa-Large text tower to an exported
OpenAI CLIP ViT-L/14 model directory, so that Spanish (and ~100 other
languages) query the same index without re-embedding the archive.

M-CLIP ``XLM-Roberta-Large-Vit-L-14`` was trained (teacher learning) to map
text into OpenAI ViT-L/14's text space, which is aligned with its image space.
Its forward pass is XLM-R large, a mean over the tokens that are not padding,
and a 1024 -> 768 linear map. The exported graph takes only ``input_ids``
[N, L] int64 (padded with XLM-R's ``<pad>`` = 1) and builds the attention mask
inside (``input_ids != 1``), so the component feeds it like any other tower.

Writes into ``--model-dir`` (made by export_clip.py; its manifest.json gains
the tower, listed after CLIP's, so English still goes to CLIP's own):

* ``text-mclip-xlmr.onnx`` (+ ``.data``: 2.2 GB of weights): ``input_ids`` ->
  ``text_embeds`` [N, 768];
* ``xlmr.tokenizer.json``: XLM-R's SentencePiece Unigram tokenizer as a
  Hugging Face tokenizer.json (``<s> ... </s>``, truncated to the context).

Modes:

* default: real weights from ``M-CLIP/XLM-Roberta-Large-Vit-L-14`` and
  ``FacebookAI/xlm-roberta-large``'s configuration and tokenizer. NEEDS
  INTERNET (Hugging Face Hub) the first time: run it where there is some, then
  copy the directory over.
* ``--random-weights``: the same architecture with random weights and, for a
  tokenizer, the tiny multilingual Unigram tokenizer of models/tiny (XLM-R's
  own is a download). Downloads nothing; sizes and speed are real, rankings
  are noise, and the manifest's description says so.

Usage::

    python models/export_mclip.py --model-dir ~/.cache/buscaescenas/models/clip-vit-l14
    python models/export_mclip.py --random-weights --model-dir ~/.cache/buscaescenas/models/clip-vit-l14-random
"""

import json
import os
import shutil
import time

import model_manifest
import onnx_export

HF_REPO = "M-CLIP/XLM-Roberta-Large-Vit-L-14"
BASE_REPO = "FacebookAI/xlm-roberta-large"
TOWER_ID = "mclip-xlmr"
ONNX_FILE = "text-mclip-xlmr.onnx"
TOKENIZER_FILE = "xlmr.tokenizer.json"
EMBED_DIM = 768
PAD_ID = 1  # XLM-R's <pad>
# Queries are short; every position costs compute (the graph runs all of them,
# padding included). 32 XLM-R tokens hold a long Spanish sentence.
CONTEXT_LENGTH = 32
HERE = os.path.dirname(os.path.abspath(__file__))
STAND_IN_TOKENIZER = os.path.join(HERE, "tiny", "multilingual.tokenizer.json")

# xlm-roberta-large's config.json
XLMR_LARGE = dict(
    vocab_size=250002, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
    intermediate_size=4096, hidden_act="gelu", max_position_embeddings=514, type_vocab_size=1,
    layer_norm_eps=1e-5, pad_token_id=PAD_ID, bos_token_id=0, eos_token_id=2,
)

ABOUT_MCLIP = {
    "en": " Its second text model {tower!r} (Multilingual-CLIP XLM-RoBERTa-Large{random}) maps text in about 100 "
          "languages, Spanish included, into the same image space, so Spanish queries need no re-indexing; "
          "it is a distilled copy of CLIP's English text model and ranks somewhat below it in English.",
    "es": " Su segundo modelo de texto {tower!r} (Multilingual-CLIP XLM-RoBERTa-Large{random}) lleva textos en unos 100 "
          "idiomas, también en español, al mismo espacio de imagen, así que las consultas en español no obligan "
          "a reindexar; es una copia destilada del modelo de texto inglés de CLIP y en inglés ordena algo peor.",
}
RANDOM_NOTE = {
    "en": ", RANDOM weights and a stand-in tokenizer: speed only, meaningless results",
    "es": ", pesos ALEATORIOS y un tokenizador de relleno: solo velocidad, resultados sin sentido",
}
# XLM-R's training languages that people search archives in; "*" would claim all.
LANGUAGES = ["es", "ca", "gl", "eu", "pt", "fr", "it", "de", "nl", "en", "ar", "ru", "zh", "ja", "hi", "pl", "ro", "tr"]


def load(args):
    """(XLM-R model, linear map) with weights."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    if args.random_weights:
        torch.manual_seed(0)
        cfg = dict(XLMR_LARGE)
        if args.num_layers:
            cfg["num_hidden_layers"] = args.num_layers
        config = XLMRobertaConfig(**cfg)
        config._attn_implementation = "eager"
        return XLMRobertaModel(config, add_pooling_layer=False), torch.nn.Linear(1024, EMBED_DIM)
    from huggingface_hub import hf_hub_download
    config = XLMRobertaConfig.from_pretrained(BASE_REPO)
    config._attn_implementation = "eager"
    transformer = XLMRobertaModel(config, add_pooling_layer=False)
    linear = torch.nn.Linear(1024, EMBED_DIM)
    # M-CLIP's checkpoint: "transformer.*" (XLM-R) and "LinearTransformation.*".
    state = torch.load(hf_hub_download(HF_REPO, "pytorch_model.bin"), map_location="cpu", weights_only=True)
    ours = {k[len("transformer."):]: v for k, v in state.items() if k.startswith("transformer.")}
    missing, unexpected = transformer.load_state_dict(ours, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    unexpected = [k for k in unexpected if not k.startswith("pooler.") and not k.endswith("position_ids")]
    if missing or unexpected:
        raise SystemExit(f"{HF_REPO}: checkpoint does not fit XLM-R large: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    linear.load_state_dict({"weight": state["LinearTransformation.weight"],
                            "bias": state["LinearTransformation.bias"]})
    return transformer, linear


def tower_module(transformer, linear):
    import torch

    class MClipText(torch.nn.Module):
        """input_ids [N, L] -> mean of the non-padding token states -> 768."""

        def __init__(self):
            super().__init__()
            self.transformer, self.linear = transformer, linear

        def forward(self, input_ids):
            mask = (input_ids != PAD_ID).to(torch.int64)
            states = self.transformer(input_ids=input_ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(2).to(states.dtype)
            return self.linear((states * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0))

    return MClipText().eval()


def write_tokenizer(args, path):
    """XLM-R's tokenizer.json truncated to the context (padding is the
    component's: it pads with the manifest's pad_id)."""
    from tokenizers import Tokenizer
    if args.random_weights:
        shutil.copyfile(STAND_IN_TOKENIZER, path)
        return
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(HF_REPO).backend_tokenizer
    tok.no_padding()
    tok.enable_truncation(CONTEXT_LENGTH)
    tok.save(path)
    Tokenizer.from_file(path)  # reads back


def example_ids(path):
    import torch
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(path)
    rows = []
    for text in ["trabajadores cavando zanjas", "chicos y chicas en una discoteca en los años 60"]:
        ids = tok.encode(text).ids[:CONTEXT_LENGTH]
        rows.append(ids + [PAD_ID] * (CONTEXT_LENGTH - len(ids)))
    return torch.tensor(rows, dtype=torch.int64)


def main():
    args = onnx_export.parse_args(__doc__, "--model-dir", "a directory made by export_clip.py")
    out = os.path.abspath(os.path.expanduser(args.model_dir))
    manifest_path = os.path.join(out, "manifest.json")
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    if manifest.get("embedding_dim") != EMBED_DIM:
        raise SystemExit(f"{manifest_path}: embedding_dim {manifest.get('embedding_dim')}, M-CLIP maps into 768")
    if manifest.get("format_version", 1) < model_manifest.FORMAT_VERSION:
        # An export from before format 2: the same towers, described again
        # (a list of text towers, and the model's description).
        import export_clip
        text = manifest["text"][0] if isinstance(manifest["text"], list) else manifest["text"]
        manifest = export_clip.manifest(out, manifest["model_id"], manifest["image"]["file"],
                                        manifest["image"]["graph_name"], text["graph_name"],
                                        manifest["model_id"].endswith("-random"))

    import torch
    torch.set_grad_enabled(False)
    t0 = time.time()
    tok_path = os.path.join(out, TOKENIZER_FILE)
    write_tokenizer(args, tok_path)
    module = tower_module(*load(args))
    print(f"loaded {'random' if args.random_weights else HF_REPO} in {time.time() - t0:.1f}s")
    path = os.path.join(out, ONNX_FILE)
    x = example_ids(tok_path)
    graph = f"{manifest['model_id']}-text-{TOWER_ID}"
    dt, ref, external = onnx_export.export(module, x, path, "input_ids", "text_embeds", graph)
    onnx_export.report("text (M-CLIP)", module, path, dt, external,
                       None if args.no_verify else onnx_export.verify(path, "input_ids", "text_embeds",
                                                                      x.numpy(), ref, EMBED_DIM))
    tower = model_manifest.text_tower(out, TOWER_ID, LANGUAGES, ONNX_FILE, graph, CONTEXT_LENGTH, PAD_ID,
                                      tokenizer_file=TOKENIZER_FILE)
    manifest["text"] = [t for t in manifest["text"] if t.get("id") != TOWER_ID] + [tower]
    random = RANDOM_NOTE if args.random_weights else {"en": "", "es": ""}
    for lang, text in ABOUT_MCLIP.items():
        line = text.format(tower=TOWER_ID, random=random[lang])
        about = manifest["about"].get(lang, "")
        manifest["about"][lang] = about.split(" Its second text model")[0].split(" Su segundo modelo de texto")[0] + line
    with open(manifest_path, "w", encoding="utf-8") as f:
        f.write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {manifest_path} (text towers: {[t['id'] for t in manifest['text']]})")


if __name__ == "__main__":
    main()
