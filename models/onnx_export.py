"""Turning a PyTorch tower into the ONNX file a BuscaEscenas model manifest
names, in one place for every export script (export_clip.py,
export_mclip.py, export_siglip2.py): the torch.onnx call with a dynamic
batch axis, the graph name the manifest promises, external data for towers
past protobuf's 2 GiB, and the check against onnxruntime."""

import os
import time

OPSET = 17
# bytes of parameters; protobuf's limit is 2 GiB
EXTERNAL_DATA_THRESHOLD = 1_800_000_000


def offline():
    """Make sure nothing is fetched from the Hugging Face Hub (random weights)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def parse_args(doc, target, target_help):
    """The export scripts' command line: ``target`` (``--out`` or
    ``--model-dir``), and the flags every export shares."""
    import argparse
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(target, required=True, help=target_help)
    ap.add_argument("--random-weights", action="store_true",
                    help="random init of the architecture and a stand-in tokenizer: no download at all")
    ap.add_argument("--num-layers", type=int, help="(smoke tests only, with --random-weights) layer count")
    ap.add_argument("--no-verify", action="store_true", help="skip the onnxruntime check")
    args = ap.parse_args()
    if args.random_weights:
        offline()
    elif args.num_layers:
        raise SystemExit("--num-layers only makes sense with --random-weights")
    return args


def param_bytes(model):
    return sum(p.numel() * p.element_size() for p in model.parameters())


def export(module, example, path, in_name, out_name, graph_name, exporter="torchscript"):
    """Exports ``module(x)`` (one input, one output, batch axis ``N``) to
    ``path``, names its graph ``graph_name`` and returns (seconds, the torch
    output on ``example`` as numpy, whether external data was needed)."""
    import onnx
    import torch

    external = param_bytes(module) > EXTERNAL_DATA_THRESHOLD
    module = module.eval()
    out_dir = os.path.dirname(os.path.abspath(path))
    before = set(os.listdir(out_dir))
    t0 = time.time()
    with torch.no_grad():
        if exporter == "torchscript":
            torch.onnx.export(
                module, (example,), path, dynamo=False,
                input_names=[in_name], output_names=[out_name],
                dynamic_axes={in_name: {0: "N"}, out_name: {0: "N"}},
                opset_version=OPSET, do_constant_folding=True,
            )
        else:
            torch.onnx.export(
                module, (example,), path, dynamo=True,
                input_names=[in_name], output_names=[out_name],
                dynamic_shapes={"x": {0: torch.export.Dim("N", min=1, max=4096)}},
                opset_version=OPSET, external_data=external, optimize=True,
            )
    # set the graph name the manifest promises; re-save (external data if large)
    m = onnx.load(path)
    m.graph.name = graph_name
    for stale in (path, path + ".data"):
        if os.path.exists(stale):
            os.remove(stale)
    if external:
        onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=os.path.basename(path) + ".data", size_threshold=1024)
    else:
        onnx.save_model(m, path)
    del m
    # A tower past 2 GiB leaves the exporter's one file per tensor beside the
    # model; the re-save above gathered them into `<file>.data`.
    keep = {os.path.basename(path), os.path.basename(path) + ".data"}
    for stale in set(os.listdir(out_dir)) - before - keep:
        os.remove(os.path.join(out_dir, stale))
    for f in keep:
        if os.path.exists(os.path.join(out_dir, f)):
            os.chmod(os.path.join(out_dir, f), 0o644)
    dt = time.time() - t0
    with torch.no_grad():
        ref = module(example).numpy()
    return dt, ref, external


def verify(path, in_name, out_name, x, ref, dim):
    """Runs ``path`` with onnxruntime on ``x`` (batch 2) and on its first row;
    returns (shape, max |onnx - torch|, min cosine, seconds for the batch)."""
    import numpy as np
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    t0 = time.time()
    y = sess.run([out_name], {in_name: x})[0]
    dt = time.time() - t0
    assert y.shape == (x.shape[0], dim), y.shape
    assert sess.run([out_name], {in_name: x[:1]})[0].shape == (1, dim)
    err = float(np.abs(y - ref).max())
    cos = float(((y * ref).sum(-1) / (np.linalg.norm(y, axis=-1) * np.linalg.norm(ref, axis=-1))).min())
    return y.shape, err, cos, dt


def file_size(path):
    """Bytes of an ONNX file and its external data, if any."""
    total = os.path.getsize(path)
    if os.path.exists(path + ".data"):
        total += os.path.getsize(path + ".data")
    return total


def report(kind, model, path, dt, external, verified=None):
    n = sum(p.numel() for p in model.parameters())
    print(f"{kind}: {n / 1e6:.1f}M params, exported in {dt:.1f}s -> {path} "
          f"({file_size(path) / 1e6:.1f} MB{', external data' if external else ''})")
    if verified:
        shape, err, cos, rt = verified
        print(f"  onnxruntime: batch {shape[0]} -> {list(shape)} in {rt:.2f}s, max |onnx - torch| = {err:.2e}, "
              f"min cosine = {cos:.6f}")
