"""Vendors the JSON schemas of the custom resources the chart renders, from their CRDs.

    uv run python deploy/schemas/vendor.py

Each CRD comes from its project's Go module, fetched with `go mod download` from the Go module
proxy at the version pinned below (the module's go.sum hash is written next to it), and each served
version's `openAPIV3Schema` becomes `<group>/<kind>_<version>.json`: a JSON schema in which an object
that lists its properties and does not preserve unknown fields admits no other property (the API
server would prune a misspelt field without a word; here it is an error), as kubeconform's
openapi2jsonschema does. The `x-kubernetes-validations` (CEL) rules are kept but not evaluated by
a JSON-schema validator; deploy/helm/check.py checks the one the chart could break (min <= max
replicas). Run it again after changing a version here, and commit the result with SOURCES.md.
"""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # no stubs installed (types-PyYAML)

HERE = Path(__file__).resolve().parent
# module, version, CRD files inside the module's zip (KEDA's module needs a newer Go than this
# machine's to be extracted by `go mod download`, so files are read from the zip itself).
SOURCES = [
    (
        "github.com/kedacore/keda/v2",
        "v2.21.1",
        [
            "config/crd/bases/keda.sh_scaledobjects.yaml",
            "config/crd/bases/keda.sh_triggerauthentications.yaml",
        ],
    ),
    (
        "github.com/prometheus-operator/prometheus-operator",
        "v0.85.0",
        [
            "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
            "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
        ],
    ),
]


def strict(schema: Any) -> Any:
    """The CRD's structural schema as a closed JSON schema."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if out.get("x-kubernetes-int-or-string") and "anyOf" not in out:
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return out


def download(module: str, version: str) -> dict[str, Any]:
    # The same project-local module cache as scripts/helm's build of helm.
    cache = HERE.parent.parent / ".cache" / "go" / "mod"
    env = {**os.environ, "GOMODCACHE": str(cache), "GOFLAGS": "-modcacherw", "GOTOOLCHAIN": "local"}
    done = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=HERE,
    )
    info: dict[str, Any] = json.loads(done.stdout)
    if "Zip" not in info:
        sys.exit(f"cannot download {module}@{version}: {info.get('Error', done.stderr)}")
    return info


def main() -> None:
    lines = [
        "# Vendored CRD schemas",
        "",
        "JSON schemas of the custom resources the chart renders, made by `vendor.py` from the CRDs of the",
        "modules below (fetched from the Go module proxy); `deploy/helm/check.py` validates the rendered",
        "objects against them. Do not edit the JSON by hand: change a version in `vendor.py` and run",
        "`uv run python deploy/schemas/vendor.py`.",
        "",
        "| schema | kind | module | version | CRD file in the module | module hash (go.sum) |",
        "|---|---|---|---|---|---|",
    ]
    for module, version, files in SOURCES:
        info = download(module, version)
        with zipfile.ZipFile(info["Zip"]) as archive:
            for name in files:
                crd = yaml.safe_load(archive.read(f"{module}@{version}/{name}"))
                group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
                for served in crd["spec"]["versions"]:
                    schema = strict(served["schema"]["openAPIV3Schema"])
                    schema["$schema"] = "http://json-schema.org/draft-04/schema#"
                    target = HERE / group / f"{kind.lower()}_{served['name']}.json"
                    target.parent.mkdir(exist_ok=True)
                    target.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
                    relative = target.relative_to(HERE)
                    lines.append(
                        f"| `{relative}` | {kind} ({group}/{served['name']}) | `{module}` | {version} "
                        f"| `{name}` | `{info['Sum']}` |"
                    )
                    print(f"wrote {relative}")
    (HERE / "SOURCES.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
