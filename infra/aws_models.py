"""The trimmed botocore service models of the webhook path (chalicelib/aws_models): the one the
functions read secrets with, and the one the webhooks hand deliveries to the processor with.

botocore builds a client from the service's whole model: SSM's is ~800 KB of JSON and ~150
operations, ~19 ms of the webhooks' cold first request for the one GetParameter it makes (issue
21). `write()` copies botocore's own definition of GetParameter (and the shapes it uses) and SSM's
endpoint rules under the service name "socialinbox-ssm" (same serviceId, signing name and
endpoint: only the loader's key differs, so it never replaces "ssm" for anyone else).
Lambda's model (~700 KB, ~80 operations) is trimmed the same way to Invoke, under
"socialinbox-lambda": the webhooks' one call since they invoke the processor asynchronously.
tests/test_cold_path.py checks the shipped files are still botocore's definitions.

    .venv/bin/python -m infra.aws_models   # after a botocore upgrade, if the test says so
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Tuple

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "chalicelib", "aws_models")
NAME, SERVICE, OPERATIONS = "socialinbox-ssm", "ssm", ("GetParameter",)
#: {our service name: (botocore's service, the operations kept)}: every trimmed model shipped.
MODELS: Dict[str, Tuple[str, Tuple[str, ...]]] = {NAME: (SERVICE, OPERATIONS),
                                                 "socialinbox-lambda": ("lambda", ("Invoke",))}


def trimmed(name: str = NAME) -> Dict[str, Dict[str, Any]]:
    """{file name: content} of the trimmed model `name` (a key of MODELS), from the installed botocore."""
    import botocore.loaders

    service_name, operations = MODELS[name]
    loader = botocore.loaders.create_loader()
    model = loader.load_service_model(service_name, "service-2")
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

    for operation in operations:
        spec = model["operations"][operation]
        for key in ("input", "output"):
            if key in spec:
                keep(spec[key]["shape"])
        for error in spec.get("errors", []):
            keep(error["shape"])
    service = {"version": model.get("version", "2.0"), "metadata": model["metadata"],
               "operations": {op: model["operations"][op] for op in operations},
               "shapes": dict(sorted(shapes.items()))}
    rules = loader.load_service_model(service_name, "endpoint-rule-set-1", model["metadata"]["apiVersion"])
    return {"service-2.json": service, "endpoint-rule-set-1.json": rules}


def folder(name: str = NAME) -> str:
    import botocore.loaders

    service_name = MODELS[name][0]
    version = botocore.loaders.create_loader().load_service_model(service_name, "service-2")["metadata"]["apiVersion"]
    return os.path.join(ROOT, name, version)


def write() -> List[str]:
    """Write every model of MODELS; returns the folders written."""
    written = []
    for model in MODELS:
        os.makedirs(folder(model), exist_ok=True)
        for name, content in trimmed(model).items():
            with open(os.path.join(folder(model), name), "w", encoding="utf-8") as handle:
                json.dump(content, handle, separators=(",", ":"), sort_keys=False)
                handle.write("\n")
        written.append(folder(model))
    return written


if __name__ == "__main__":
    for path in write():
        print(f"wrote {path}")
