#!/usr/bin/env python3
"""GPU throughput of the CLIP ViT-L/14 image tower (random weights, the real
architecture) for the indexer's GPU sizing: images/s at fp16 and several batch
sizes, with CUDA-event timing, and what that means for "27.5 h of video at
1 fps (99,000 frames) in <= 5 min".

Runs where PyTorch with CUDA and transformers are installed (the device
machine); downloads nothing. Also reports whether ONNX Runtime there has the
CUDA execution provider, which the Rust indexer's `cuda` feature needs.

    python3 bench/gpu_encoder.py [--batches 32 64 128 256] [--seconds 5]
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def vit_l14_config():
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(
        hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
        num_attention_heads=16, patch_size=14, image_size=224, projection_dim=768,
        hidden_act="quick_gelu",
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 64, 128, 256])
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import torch
    from transformers import CLIPVisionModelWithProjection

    torch.manual_seed(0)
    dev = torch.device("cuda")
    model = CLIPVisionModelWithProjection(vit_l14_config()).eval().to(dev, torch.float16)
    params = sum(p.numel() for p in model.parameters())
    rows = []
    for attn in ["sdpa", "eager"]:
        try:
            model.config._attn_implementation = attn
        except Exception:
            pass
        for batch in args.batches:
            x = torch.randn(batch, 3, 224, 224, device=dev, dtype=torch.float16)
            with torch.inference_mode():
                for _ in range(3):
                    model(pixel_values=x).image_embeds
                torch.cuda.synchronize()
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                n = 0
                t0 = time.perf_counter()
                start.record()
                while time.perf_counter() - t0 < args.seconds:
                    out = model(pixel_values=x).image_embeds
                    n += batch
                end.record()
                torch.cuda.synchronize()
                ms = start.elapsed_time(end)
            assert out.shape == (batch, 768)
            ips = n / (ms / 1000)
            rows.append({"attention": attn, "batch": batch, "img_per_s": round(ips, 1),
                         "s_for_99k_frames": round(99_000 / ips, 1)})
            print(f"{attn:6} batch {batch:4}: {ips:9.1f} img/s  -> 99k frames in {99_000/ips:6.1f} s", flush=True)

    ort_providers = None
    try:
        import onnxruntime
        ort_providers = onnxruntime.get_available_providers()
    except Exception as e:  # noqa: BLE001
        ort_providers = f"onnxruntime not importable: {e}"
    ffmpeg = shutil.which("ffmpeg")
    report = {
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "params": params,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "onnxruntime_providers": ort_providers,
        "ffmpeg": subprocess.run([ffmpeg, "-version"], capture_output=True, text=True).stdout.splitlines()[0] if ffmpeg else None,
        "rows": rows,
    }
    print(json.dumps(report, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
