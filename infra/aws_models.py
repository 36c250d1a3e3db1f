"""The trimmed botocore service model the functions read secrets with (chalicelib/aws_models).

botocore builds a client from the service's whole model: SSM's is ~800 KB of JSON and ~150
operations, ~19 ms of the webhooks' cold first request for the one GetParameter it makes (issue
21). `write()` copies botocore's own definition of GetParameter (and the shapes it uses) and SSM's
endpoint rules under the service name "socialinbox-ssm" (same serviceId, signing name and
endpoint: only the loader's key differs, so it never replaces "ssm" for anyone else).
tests/test_cold_path.py checks the shipped file is still botocore's definition.

    .venv/bin/python -m infra.aws_models   # after a botocore upgrade, if the test says so
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "chalicelib", "aws_models")
NAME, SERVICE, OPERATIONS = "socialinbox-ssm", "ssm", ("GetParameter",)


def trimmed() -> Dict[str, Dict[str, Any]]:
    """{file name: content} of the trimmed model, from the installed botocore."""
    import botocore.loaders

    loader = botocore.loaders.create_loader()
    model = loader.load_service_model(SERVICE, "service-2")
    shapes: Dict[str, Any] = {}

    def keep(name: str) -> None:
        if name in shapes:
            return
        shape = shapes[name] = model["shapes"][name]
        for key in ("member", "key", "value"):
            if key in shape:
                keep(shape[key]["shape"])
        for member in shape.get("members", {}).values():
            keep(member["shape"])

    for operation in OPERATIONS:
        spec = model["operations"][operation]
        for key in ("input", "output"):
            if key in spec:
                keep(spec[key]["shape"])
        for error in spec.get("errors", []):
            keep(error["shape"])
    service = {"version": model.get("version", "2.0"), "metadata": model["metadata"],
               "operations": {op: model["operations"][op] for op in OPERATIONS},
               "shapes": dict(sorted(shapes.items()))}
    rules = loader.load_service_model(SERVICE, "endpoint-rule-set-1", model["metadata"]["apiVersion"])
    return {"service-2.json": service, "endpoint-rule-set-1.json": rules}


def folder() -> str:
    import botocore.loaders

    version = botocore.loaders.create_loader().load_service_model(SERVICE, "service-2")["metadata"]["apiVersion"]
    return os.path.join(ROOT, NAME, version)


def write() -> None:
    os.makedirs(folder(), exist_ok=True)
    for name, content in trimmed().items():
        with open(os.path.join(folder(), name), "w", encoding="utf-8") as handle:
            json.dump(content, handle, separators=(",", ":"), sort_keys=False)
            handle.write("\n")


if __name__ == "__main__":
    write()
    print(f"wrote {folder()}")
