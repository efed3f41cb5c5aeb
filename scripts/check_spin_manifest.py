#!/usr/bin/env python3
"""Checks spin.toml, the manifest Spin and Fermyon users deploy.

1. Against Spin's published manifest v2 JSON schema
   (spinframework/schemas.spinframework.dev, spin/manifest-v2/latest.json),
   validated with the `jsonschema` package. No code path downloads it: the
   schema is read from $BUSCA_SPIN_SCHEMA, or from the steering repo's shared/
   beside this checkout (../shared/spin/manifest-v2/latest.json). Without it
   this part says so and is not counted as passed.
2. Always: what the schema cannot know. Every trigger names a component that
   exists; every `{{ variable }}` a component uses is declared in
   [variables]; each component's source is what its build command makes
   (query-component/dist/...); `files` mount the bundles root at /bundles,
   where the query component reads it; nothing is allowed outbound unless an
   option needs it.

    python scripts/check_spin_manifest.py spin.toml [spin-remote.toml ...]
"""
import json
import os
import pathlib
import re
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def schema_path():
    if os.environ.get("BUSCA_SPIN_SCHEMA"):
        return pathlib.Path(os.environ["BUSCA_SPIN_SCHEMA"])
    return ROOT.parent / "shared" / "spin" / "manifest-v2" / "latest.json"


def structural_errors(manifest):
    errors = []
    components = manifest.get("component", {})
    declared = set(manifest.get("variables", {}))
    for trigger in manifest.get("trigger", {}).get("http", []):
        name = trigger.get("component")
        if isinstance(name, str) and name not in components:
            errors.append(f"trigger {trigger.get('route')!r} names component {name!r}, which is not defined")
    for name, component in components.items():
        text = json.dumps(component)
        for used in re.findall(r"\{\{\s*([a-z0-9_]+)\s*\}\}", text):
            if used not in declared:
                errors.append(f"component {name!r} uses variable {used!r}, not declared in [variables]")
        source = component.get("source")
        command = component.get("build", {}).get("command", "")
        commands = " ".join(command) if isinstance(command, list) else command
        if not isinstance(source, str) or not source.startswith("query-component/dist/"):
            errors.append(f"component {name!r}: source {source!r} is not an artefact of scripts/build-component.sh")
        elif "build-component.sh" not in commands and "build-spin.sh" not in commands:
            errors.append(f"component {name!r}: its build command {commands!r} does not make {source}")
        mounts = [f for f in component.get("files", []) if isinstance(f, dict)]
        if not any(f.get("destination") == "/bundles" for f in mounts):
            errors.append(f"component {name!r} mounts no bundles root at /bundles (query-component reads it there)")
        for f in mounts:
            if not (ROOT / f["source"]).resolve().is_relative_to(ROOT):
                errors.append(f"component {name!r} mounts {f['source']!r}, outside the repository")
        outbound = component.get("allowed_outbound_hosts", [])
        for host in outbound:
            if "*" in host.split("://", 1)[-1].split(":")[0]:
                errors.append(f"component {name!r} allows a wildcard outbound host {host!r}")
    return errors


def main():
    paths = [pathlib.Path(p) for p in sys.argv[1:]] or [ROOT / "spin.toml"]
    return max(check(path) for path in paths)


def check(path):
    try:
        manifest = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        print(f"{path}: {e}", file=sys.stderr)
        return 1
    errors = structural_errors(manifest)
    schema_file = schema_path()
    if schema_file.is_file():
        import jsonschema

        schema = json.loads(schema_file.read_text())
        validator = jsonschema.Draft202012Validator(schema)
        for err in sorted(validator.iter_errors(manifest), key=lambda e: list(e.path)):
            where = "/".join(str(p) for p in err.path) or "(top)"
            errors.append(f"schema: {where}: {err.message}")
        checked = f"Spin's manifest v2 schema ({schema_file})"
    else:
        checked = None
    for e in errors:
        print(f"{path}: {e}", file=sys.stderr)
    if errors:
        return 1
    print(f"{path}: structure ok")
    if checked:
        print(f"{path}: valid against {checked}")
    else:
        print(f"{path}: NOT checked against Spin's published schema: {schema_file} is missing "
              "(set BUSCA_SPIN_SCHEMA to a copy of spin/manifest-v2/latest.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
