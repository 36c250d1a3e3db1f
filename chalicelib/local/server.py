"""`make run`: the whole product on one machine, no AWS account needed.

Starts moto in server mode (127.0.0.1:MOTO_PORT), creates the tables and queues from
infra/resources.json, seeds demo agents and accounts, serves the Chalice app (API, webhooks,
inbox) on 127.0.0.1:PORT and pumps the ingest queue into the real processor. Ctrl-C stops it.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import List, Optional


def _configure_environment(moto_port: int) -> None:
    os.environ.setdefault("SOCIALINBOX_STAGE", "local")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{moto_port}"
    os.environ.setdefault("AWS_XRAY_SDK_ENABLED", "false")
    os.environ.pop("AWS_PROFILE", None)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--moto-port", type=int, default=int(os.environ.get("MOTO_PORT", "5000")))
    parser.add_argument("--demo", action="store_true", default=os.environ.get("DEMO") == "1",
                        help="send demo traffic for every channel once the server is up")
    args = parser.parse_args(argv)
    _configure_environment(args.moto_port)
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request lines

    from moto.server import ThreadedMotoServer

    emulator = ThreadedMotoServer(ip_address=args.host, port=args.moto_port, verbose=False)
    emulator.start()

    from chalice.config import Config
    from chalice.local import create_local_server

    from chalicelib.config import LOCAL_SECRET_DEFAULTS
    from chalicelib.local import seed, stack
    from chalicelib.local.pump import Pump

    stack.create_all()
    seeded = seed.seed()

    import app as application

    project_dir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(project_dir, ".chalice", "config.json"), encoding="utf-8") as handle:
        chalice_config = Config(chalice_stage="local", config_from_disk=json.load(handle))
    server = create_local_server(application.app, chalice_config, args.host, args.port)
    pump = Pump(application.ingest_processor)
    pump.start()

    base = f"http://{args.host}:{args.port}"
    print(f"socialinbox is running (stage local, AWS emulated by moto on {args.host}:{args.moto_port})", flush=True)
    print(f"  inbox:     {base}/", flush=True)
    print(f"  API:       {base}/api/conversations", flush=True)
    print(f"  webhooks:  {base}/webhooks/<platform>  ({', '.join(_adapters())})", flush=True)
    if "LOCAL_ADMIN_PASSWORD" in os.environ:
        password_hint = "the LOCAL_ADMIN_PASSWORD you set"  # a chosen password is never echoed
    else:
        password_hint = f"{LOCAL_SECRET_DEFAULTS['LOCAL_ADMIN_PASSWORD']} (dev default; set LOCAL_ADMIN_PASSWORD)"
    print(f"  logins:    {', '.join(seeded['agents'])}", flush=True)
    print(f"  password:  {password_hint}", flush=True)
    print(f"  accounts:  {len(seeded['accounts'])} demo channel accounts", flush=True)
    print("  Ctrl-C stops everything.", flush=True)

    def stop(*_: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.demo:
        threading.Thread(target=_demo, args=(base,), daemon=True).start()
    try:
        server.serve_forever()
    finally:
        pump.stop()
        pump.join(timeout=5)
        emulator.stop()
        print("socialinbox stopped.", flush=True)
    return 0


def _adapters() -> List[str]:
    from chalicelib.channels import adapter_names

    return adapter_names()


def _demo(base: str) -> None:
    from chalicelib.local.demo import send_all

    results = send_all(base)
    print(f"demo traffic sent: {len(results)} deliveries, statuses {sorted(set(s for _, s in results))}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
