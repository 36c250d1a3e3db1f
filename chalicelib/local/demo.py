"""Demo traffic: correctly signed, realistic deliveries for every channel, sent over HTTP to a
running local server (`make demo`, or `make run DEMO=1`). Loopback only, bounded, stops by itself."""
from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from typing import List, Optional, Tuple

from chalicelib.runtime import runtime
from chalicelib.channels import adapter_names, get_adapter


def send_all(base_url: str, now_ms: Optional[int] = None) -> List[Tuple[str, int]]:
    """POST every adapter's demo deliveries; returns (adapter, HTTP status) per delivery."""
    if not base_url.startswith(("http://127.0.0.1", "http://localhost")):
        raise ValueError("the demo only talks to a local server")
    now_ms = now_ms or int(time.time() * 1000)
    results = []
    for name in adapter_names():
        adapter = get_adapter(name)
        for payload in adapter.demo_deliveries(now_ms):
            raw = json.dumps(payload).encode("utf-8")  # ASCII-escaped, as Meta sends it
            headers = {"Content-Type": "application/json"}
            headers.update(adapter.signed_headers(raw, runtime.secret))
            request = urllib.request.Request(f"{base_url}/webhooks/{name}", data=raw, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    results.append((name, response.status))
            except urllib.error.HTTPError as error:
                results.append((name, error.code))
    return results


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    args = parser.parse_args(argv)
    results = send_all(args.url.rstrip("/"))
    for name, status in results:
        print(f"{name:10s} {status}")
    return 0 if all(200 <= s < 300 for _, s in results) else 1


if __name__ == "__main__":
    sys.exit(main())
