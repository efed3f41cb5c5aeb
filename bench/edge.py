#!/usr/bin/env python3
"""The self-contained edge component (query component + tract wasi:nn
provider) under a stock `wasmtime serve` with no wasi:nn, beside busca-serve
(ONNX Runtime behind wasi:nn) on the same bundles, in one run:

- size of each artefact, and of the self-contained component holding an
  18,400-shot 768-d i8 bundle (the first user's archive) with the tiny model;
  the linear memory each of its core modules starts with, and whether every
  query is answered with each memory capped so that both together stay within
  128 MiB (`-W max-memory-size`);
- first request after start, and p50 of fresh per-request instances;
- the text query's own time inside the component (`took_ms`: tokenize,
  encode, search), tract in the component vs ONNX Runtime in busca-serve;
- requests/s under wrk (-c32) on a 100-shot bundle: busca-serve, and the
  component under `wasmtime serve` with the flags README recommends (TUNED)
  and with none, alternating over several rounds (median reported).

    python bench/edge.py --dist query-component/dist --busca-serve BIN --host-bench BIN \
        --model models/tiny --work DIR [--shots 18400] [--wrk-seconds 10] [--requests 50]

Prints one JSON object (bench/report.py renders it). Needs the wasmtime CLI
and wasm-tools (scripts/setup.sh --tests), wrk for the throughput rows.
Every server it starts listens on 127.0.0.1 and is ended by its own id.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20
QUERY = {"text": "a blue scene", "k": 10}


def log(*a):
    print("[edge-bench]", *a, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def post(port, body, timeout=60):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/search", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, json.loads(r.read())


class Server:
    """A server process on a free loopback port, ended by its id."""

    def __init__(self, argv, port, log_path, env=None):
        self.port = port
        self.log = open(log_path, "w")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 300
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited {self.proc.returncode}; see {log_path}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.time() > deadline:
                    self.stop()
                    raise RuntimeError(f"{argv[0]} did not listen in 300 s; see {log_path}")
                time.sleep(0.05)
        self.listening_s = time.perf_counter() - self.started

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# How a wasmtime host should run the component (README, "Any wasmtime"): the
# pooling allocator keeps each instance's memory resident between requests,
# and PAGEMAP_SCAN (Linux 6.7+) lets it restore only the pages a request
# dirtied, instead of mapping the snapshot copy-on-write anew, whose faults
# and TLB shootdowns are most of a request's cost with the defaults (perf).
# Tables likewise: decommitted after each instance (the default), every
# request's first call through a table faults copy-on-write and shoots down
# the other core's TLB (perf: 22% of CPU under wrk between the fault and the
# IPIs); kept resident, 713-743 -> 1,103-1,175 req/s at 100 shots.
# busca-serve configures its engine the same way (host/src/runtime.rs).
# And a copy-on-write image for the snapshot however sparse its pages
# (memory-guaranteed-dense-image-size): otherwise wasmtime copies every data
# segment of a small bundle's snapshot into each instance (1,135 -> 3,693
# req/s at 100 shots). The CLI's compilation cache does not key on that
# setting, so a module cached without it keeps copying: `-C cache=n`.
TUNED = ["-C", "cache=n", "-O", "pooling-allocator=y,pooling-memory-keep-resident=67108864,"
         "pooling-table-keep-resident=1048576,pooling-pagemap-scan=y,memory-guaranteed-dense-image-size=268435456"]


def wasmtime_serve(component, bundles, work, name, extra=()):
    port = free_port()
    argv = ["wasmtime", "serve", "-Scli", "--addr", f"127.0.0.1:{port}", "--dir", f"{bundles}::/bundles",
            *extra, str(component)]
    return Server(argv, port, work / f"{name}.log")


def busca_serve(binary, component, bundles, model, work, name):
    port = free_port()
    argv = [str(binary), "--component", str(component), "--bundles", str(bundles), "--models", str(model),
            "--listen", f"127.0.0.1:{port}", "--poll-interval-ms", "0", "--cache-dir", str(work / "snapshots")]
    return Server(argv, port, work / f"{name}.log")


def latencies(port, n):
    """First request's wall ms, then wall and took_ms p50 over n more (each a fresh instance)."""
    t = time.perf_counter()
    status, first = post(port, QUERY)
    first_ms = (time.perf_counter() - t) * 1e3
    if status != 200:
        raise RuntimeError(f"first request: {status} {first}")
    walls, tooks = [], []
    for _ in range(n):
        t = time.perf_counter()
        status, body = post(port, QUERY)
        walls.append((time.perf_counter() - t) * 1e3)
        if status != 200:
            raise RuntimeError(f"{status} {body}")
        tooks.append(body["took_ms"])
    return {"first_ms": first_ms, "wall_p50_ms": statistics.median(walls), "took_p50_ms": statistics.median(tooks),
            "results": [h["shot_id"] for h in first["results"]]}


def median_run(runs):
    """The run with the median req/s, with every run's req/s beside it."""
    mid = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
    return mid | {"runs_rps": [r["rps"] for r in runs]}


def wrk(port, seconds, work):
    script = work / "search.lua"
    script.write_text('wrk.method = "POST"\nwrk.body = \'' + json.dumps(QUERY) + '\'\n'
                      'wrk.headers["Content-Type"] = "application/json"\n')
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", "-s", str(script),
                          f"http://127.0.0.1:{port}/api/search"], capture_output=True, text=True, timeout=seconds + 60)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out.stdout).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out.stdout)

    def lat(p):
        v = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out.stdout, re.M)
        return float(v.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[v.group(2)]
    return {"rps": rps, "p50_ms": lat(50), "p99_ms": lat(99), "non2xx": int(non2xx.group(1)) if non2xx else 0}


def leb(data, pos):
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, pos


def core_memories(data):
    """Initial sizes (bytes) of the memories each core module of a component
    declares, walking nested components: what an instance starts with."""
    out = []

    def module(m):
        pos = 8
        while pos < len(m):
            sid = m[pos]
            size, pos = leb(m, pos + 1)
            if sid == 5:  # memory section: vec of limits
                count, p = leb(m, pos)
                for _ in range(count):
                    flags = m[p]
                    minimum, p = leb(m, p + 1)
                    if flags & 1:
                        _, p = leb(m, p)
                    out.append(minimum * 65536)
            pos += size

    def component(c):
        pos = 8
        while pos < len(c):
            sid = c[pos]
            size, pos = leb(c, pos + 1)
            if sid == 1:
                module(c[pos:pos + size])
            elif sid == 4:
                component(c[pos:pos + size])
            pos += size

    component(data)
    return out


def compose(dist, model, bundles, out):
    subprocess.run(["bash", str(ROOT / "scripts/compose-edge.sh"), "--query", str(dist / "query_component.wasm"),
                    "--provider", str(dist / "nn_provider.wasm"), "--model", str(model), "--bundles", str(bundles),
                    "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    return out


def hybrid_model(tiny, tower, out):
    """A model directory with the tiny image tower and `tower`'s text tower
    (both 768-d), so that the text path runs the large tower while bundles
    and image queries stay cheap."""
    m = json.loads((tiny / "manifest.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny / m["image"]["file"], out / "image.onnx")
    text = out / "text.onnx"
    if not text.exists():
        shutil.copy(tower / "text.onnx", text)
    m.pop("colours", None)
    m["model_id"] = f"tiny-image+{tower.name}"
    m["image"].update(file="image.onnx", graph_name=f"{m['model_id']}-image")
    # Format 2: a list of text towers; the large one alone, as the default.
    clip = m["text"][0] if isinstance(m["text"], list) else m["text"]
    clip.update(file="text.onnx", graph_name=f"{m['model_id']}-text",
                sha256=hashlib.sha256(text.read_bytes()).hexdigest())
    m["text"] = [clip]
    (out / "manifest.json").write_text(json.dumps(m, indent=2) + "\n")
    return out


def text_tower(a, bundles):
    """Text-query time with the large text tower: tract in wasm (simd128), as
    the provider runs it, vs ONNX Runtime in busca-serve; and whether the
    self-contained component can be pre-initialized with it at all."""
    work = a.work / "text-tower"
    work.mkdir(exist_ok=True)
    model = hybrid_model(a.model, a.text_tower, work / "model")
    out = {"tower": str(a.text_tower), "text_onnx_bytes": (model / "text.onnx").stat().st_size}
    bund = bundles(100, "i8", model=model, work=work)
    log("text tower: pre-initializing the provider with it")
    t = time.perf_counter()
    try:
        edge = compose(a.dist, model, bund, work / "edge-text-tower.wasm")
        out["edge_bytes"] = edge.stat().st_size
    except subprocess.CalledProcessError as e:
        out["compose_error"] = "scripts/compose-edge.sh failed (exit %d)" % e.returncode
    out["compose_s"] = time.perf_counter() - t
    if a.time_text and a.time_text.is_file():
        log("text tower: tract in wasm (nn-provider's time_text example)")
        runs = subprocess.run(["wasmtime", "run", "-Scli", "--dir", f"{model}::/nn-graphs", str(a.time_text), "6"],
                              check=True, capture_output=True, text=True, timeout=1800)
        tract = json.loads(runs.stdout.strip().splitlines()[-1])
        out["tract_wasm"] = tract | {"p50_ms": statistics.median(tract["runs_ms"][1:])}
    n = max(5, a.requests // 5)
    log("text tower: ONNX Runtime in busca-serve")
    server = busca_serve(a.busca_serve, a.dist / "query_component.wasm", bund, model, work, "serve-text-tower")
    try:
        out["serve"] = latencies(server.port, n) | {"listening_s": server.listening_s}
    finally:
        server.stop()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dist", type=Path, default=ROOT / "query-component/dist")
    ap.add_argument("--busca-serve", type=Path, required=True)
    ap.add_argument("--host-bench", type=Path, required=True)
    ap.add_argument("--model", type=Path, default=ROOT / "models/tiny")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--shots", type=int, default=18_400)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--text-tower", type=Path,
                    help="a model directory holding another text tower's text.onnx (models/export_clip.py "
                         "--random-weights --only text: ViT-L/14's shape): its text-query time, tract in the "
                         "component vs ONNX Runtime in busca-serve, with the tiny image tower beside it")
    ap.add_argument("--time-text", type=Path,
                    default=Path(os.environ.get("BUSCA_HOME", Path.home() / ".cache/buscaescenas"))
                    / "target-nn-provider/wasm32-wasip2/release/examples/time_text.wasm",
                    help="nn-provider's time_text example built for wasm32-wasip2 (tract's time per text query)")
    ap.add_argument("--wrk-seconds", type=int, default=10)
    ap.add_argument("--wrk-rounds", type=int, default=3,
                    help="throughput rounds; the servers alternate in each, so load on a shared machine hits all alike")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    res = {"shots": a.shots, "sizes_bytes": {}, "memory": {}, "latency": {}, "wrk": {}}

    def bundles(shots, quantization, model=a.model, work=a.work):
        out = subprocess.run([str(a.host_bench), "--component", str(a.dist / "query_component.wasm"),
                              "--model", str(model), "--work", str(work), "--python", a.python,
                              "--sizes", str(shots), "--quantization", quantization, "--bundles-only"],
                             check=True, capture_output=True, text=True)
        return Path(out.stdout.strip().splitlines()[-1])

    for name in ("query_component.wasm", "nn_provider.wasm", "nn_provider_remote.wasm"):
        res["sizes_bytes"][name] = (a.dist / name).stat().st_size
    small = bundles(100, "i8")
    big = bundles(a.shots, "i8")
    big_f16 = bundles(a.shots, "f16")
    log("composing")
    edge_small = compose(a.dist, a.model, small, a.work / "edge-100-i8.wasm")
    edge_big = compose(a.dist, a.model, big, a.work / f"edge-{a.shots}-i8.wasm")
    edge_big_f16 = compose(a.dist, a.model, big_f16, a.work / f"edge-{a.shots}-f16.wasm")
    for label, path in (("edge_100_i8", edge_small), (f"edge_{a.shots}_i8", edge_big),
                        (f"edge_{a.shots}_f16", edge_big_f16)):
        res["sizes_bytes"][label] = path.stat().st_size
        res["memory"][label] = core_memories(path.read_bytes())

    # Memory: every query answered with each linear memory capped at 64 MiB,
    # so that the instance's memories together stay within 128 MiB.
    cap = 64 * MIB
    log("memory cap run")
    server = wasmtime_serve(edge_big, big, a.work, "edge-capped", ["-W", f"max-memory-size={cap}", *TUNED])
    try:
        answered = 0
        for text in ("a blue scene", "red", "verde", "a yellow car at night", "amarillo"):
            status, _ = post(server.port, {"text": text, "k": 10})
            answered += status == 200
        res["memory"]["capped_run"] = {"cap_bytes_per_memory": cap, "queries": 5, "answered": answered}
    except Exception as e:  # a trap on the cap is a 500: record it, do not stop the bench
        res["memory"]["capped_run"] = {"cap_bytes_per_memory": cap, "queries": 5, "answered": 0, "error": str(e)[:300]}
    finally:
        server.stop()

    def starts(label, edge, bund):
        return {
            "edge": lambda: wasmtime_serve(edge, bund, a.work, f"edge-{label}", TUNED),
            "edge-default": lambda: wasmtime_serve(edge, bund, a.work, f"edge-default-{label}"),
            "serve": lambda: busca_serve(a.busca_serve, a.dist / "query_component.wasm", bund, a.model, a.work,
                                         f"serve-{label}"),
        }

    for label, edge, bund in (("100", edge_small, small), (str(a.shots), edge_big, big)):
        for who, start in starts(label, edge, bund).items():
            if who == "edge-default":
                continue
            log(f"latency, {who}, {label} shots")
            server = start()
            try:
                res["latency"][f"{who}_{label}"] = latencies(server.port, a.requests) | {"listening_s": server.listening_s}
            finally:
                server.stop()
        same = res["latency"][f"edge_{label}"]["results"] == res["latency"][f"serve_{label}"]["results"]
        res["latency"][f"same_top10_{label}"] = same

    runs = {}
    for r in range(a.wrk_rounds if a.wrk_seconds > 0 else 0):
        for who, start in starts("100", edge_small, small).items():
            log(f"wrk round {r + 1}/{a.wrk_rounds}, {who}")
            server = start()
            try:
                post(server.port, QUERY)
                runs.setdefault(who, []).append(wrk(server.port, a.wrk_seconds, a.work))
            finally:
                server.stop()
    for who, got in runs.items():
        res["wrk"][f"{who.replace('-', '_')}_100"] = median_run(got)
    res["wrk_flags"] = {"edge": " ".join(TUNED), "edge_default": "(none)"}
    if a.text_tower:
        res["text_tower"] = text_tower(a, bundles)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
