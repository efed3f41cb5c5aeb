#!/usr/bin/env python3
"""Checks deploy/k8s/*.yaml and deploy/docker/*.Dockerfile.

1. Every manifest against the Kubernetes API schemas kubernetes-validate
   ships (strict: unknown fields are errors), for each pinned Kubernetes
   version: the oldest we support (1.33, where backoffLimitPerIndex is GA)
   and the newest the package knows. A broken copy must fail, so the
   validator is known to be live.
2. What the schemas cannot know: the workers' Job is Indexed and its
   BUSCA_SHARDS equals its completions; workers and publish name the same
   collection, bucket, model and list; the publish Job runs `publish`; S3
   credentials only come from Secrets; workers request a GPU; the serving
   Deployment is ready on /api/collections and its Service reaches it.
3. Every flag the manifests pass exists in the binaries' --help (so a
   renamed flag fails here, not in a cluster), and the environment variables
   busca-index reads are the ones named there.
4. Every COPY source of the Dockerfiles exists in the repository, and their
   build commands name binaries the workspace has.

    python scripts/check_k8s.py BIN_DIR     # BIN_DIR holds busca-index and busca-serve
"""
import copy
import pathlib
import re
import subprocess
import sys

import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
DOCKER = ROOT / "deploy" / "docker"
VERSIONS = ["1.33.0", "1.37.0"]


def load():
    docs = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs[(doc["kind"], doc["metadata"]["name"])] = (path.name, doc)
    return docs


def validate(docs, errors):
    for version in VERSIONS:
        for (kind, name), (file, doc) in docs.items():
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                errors.append(f"{file}: {kind}/{name} against Kubernetes {version}: {e.message} at {list(e.path)}")
    # The control: a typo'd field and a wrong type must be refused.
    _, job = docs[("Job", "busca-index-workers")]
    broken = copy.deepcopy(job)
    broken["spec"]["completionsMode"] = "Indexed"
    broken["spec"]["parallelism"] = "eight"
    try:
        kubernetes_validate.validate(broken, VERSIONS[0], strict=True)
        errors.append("kubernetes-validate accepted a Job with an unknown field and a string parallelism")
    except kubernetes_validate.ValidationError:
        pass


def container(doc):
    [c] = doc["spec"]["template"]["spec"]["containers"]
    return c


def env(c):
    return {e["name"]: e for e in c.get("env", [])}


def flag(args, name):
    for a in args:
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
    return None


def wiring(docs, errors):
    _, workers = docs[("Job", "busca-index-workers")]
    _, publish = docs[("Job", "busca-index-publish")]
    _, serve = docs[("Deployment", "busca-serve")]
    _, service = docs[("Service", "busca-serve")]
    spec = workers["spec"]
    w, p = container(workers), container(publish)
    if spec.get("completionMode") != "Indexed":
        errors.append("the workers' Job must be Indexed (each pod's JOB_COMPLETION_INDEX is its worker)")
    if env(w).get("BUSCA_SHARDS", {}).get("value") != str(spec["completions"]):
        errors.append(f"workers: BUSCA_SHARDS must equal completions ({spec['completions']})")
    if env(p).get("BUSCA_SHARDS", {}).get("value") != str(spec["completions"]):
        errors.append("publish: BUSCA_SHARDS must equal the workers' completions (it names missing videos' workers)")
    if spec.get("parallelism", 1) > spec["completions"]:
        errors.append("workers: parallelism above completions")
    if "JOB_COMPLETION_INDEX" in env(w):
        errors.append("workers: JOB_COMPLETION_INDEX is set by Kubernetes, not by the manifest")
    for key in ["collection", "out", "model", "list"]:
        if flag(w["args"], key) is None or flag(w["args"], key) != flag(p["args"], key):
            errors.append(f"workers and publish must pass the same --{key}")
    if p["args"][0] != "publish":
        errors.append("the publish Job must run `busca-index publish`")
    if "publish" in w["args"]:
        errors.append("workers must not publish")
    if not w["resources"].get("limits", {}).get("nvidia.com/gpu"):
        errors.append("workers: no GPU limit (nvidia.com/gpu)")
    if flag(w["args"], "device") not in ("cuda", "auto"):
        errors.append("workers: --device should be cuda (or auto)")
    for (kind, name), (file, doc) in docs.items():
        if kind not in ("Job", "Deployment"):
            continue
        for e in container(doc).get("env", []):
            if e["name"].startswith("AWS_") and ("KEY" in e["name"] or "TOKEN" in e["name"]):
                if "value" in e or "secretKeyRef" not in e.get("valueFrom", {}):
                    errors.append(f"{file}: {e['name']} must come from a Secret")
    s = container(serve)
    probe = s.get("readinessProbe", {}).get("httpGet", {})
    if probe.get("path") != "/api/collections":
        errors.append("serve: readiness must be GET /api/collections")
    port_names = {port["name"]: port["containerPort"] for port in s["ports"]}
    listen = flag(s["args"], "listen") or ""
    if not listen.startswith("0.0.0.0:") or int(listen.rsplit(":", 1)[1]) != port_names.get(probe.get("port")):
        errors.append("serve: --listen must be on all interfaces at the probed container port")
    if service["spec"]["selector"] != serve["spec"]["selector"]["matchLabels"]:
        errors.append("the Service does not select the Deployment's pods")
    if serve["spec"]["selector"]["matchLabels"].items() - serve["spec"]["template"]["metadata"]["labels"].items():
        errors.append("the Deployment's selector does not match its pods")


def help_text(binary, *sub):
    out = subprocess.run([str(binary), *sub, "--help"], capture_output=True, text=True, check=True)
    return out.stdout


def flags_exist(docs, bin_dir, errors):
    index_help = help_text(bin_dir / "busca-index")
    helps = {
        "busca-index": index_help,
        "busca-index publish": help_text(bin_dir / "busca-index", "publish"),
        "busca-serve": help_text(bin_dir / "busca-serve"),
    }
    for variable in ["JOB_COMPLETION_INDEX", "BUSCA_SHARDS"]:
        if f"[env: {variable}" not in index_help:
            errors.append(f"busca-index does not read {variable}")
    if "[env: BUSCA_SHARDS" not in helps["busca-index publish"]:
        errors.append("busca-index publish does not read BUSCA_SHARDS")
    for (kind, name), (file, doc) in docs.items():
        if kind not in ("Job", "Deployment"):
            continue
        args = container(doc)["args"]
        program = "busca-serve" if kind == "Deployment" else "busca-index"
        if args and args[0] == "publish":
            program, args = "busca-index publish", args[1:]
        for a in args:
            name_ = re.match(r"--([a-z0-9-]+)", a)
            if not name_ or not re.search(rf"--{re.escape(name_.group(1))}\b", helps[program]):
                errors.append(f"{file}: {program} has no option {a}")


def dockerfiles(errors):
    bins = {"busca-index": ROOT / "indexer" / "src" / "main.rs", "busca-serve": ROOT / "host"}
    for path in sorted(DOCKER.glob("*.Dockerfile")):
        text = path.read_text()
        for line in text.splitlines():
            m = re.match(r"COPY\s+(?!--from)(\S+)\s+\S+", line)
            if m and m.group(1) != "." and not (ROOT / m.group(1)).exists():
                errors.append(f"{path.name}: COPY {m.group(1)} does not exist")
        for b in re.findall(r"--bin (\S+)", text):
            if b not in bins:
                errors.append(f"{path.name}: no binary {b} in the workspace")
        for script in re.findall(r"(scripts/\S+\.sh)", text):
            if not (ROOT / script).exists():
                errors.append(f"{path.name}: {script} does not exist")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    bin_dir = pathlib.Path(sys.argv[1])
    docs = load()
    errors = []
    validate(docs, errors)
    wiring(docs, errors)
    flags_exist(docs, bin_dir, errors)
    dockerfiles(errors)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    if errors:
        sys.exit(1)
    kinds = ", ".join(f"{k}/{n}" for k, n in docs)
    print(f"ok: {len(docs)} resources ({kinds}) valid against Kubernetes {' and '.join(VERSIONS)}; "
          f"wiring, flags and Dockerfiles checked")


if __name__ == "__main__":
    main()
