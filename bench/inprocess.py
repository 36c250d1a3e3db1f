"""For the benches that run moto in their own process and price requests with bench/wru.py:
import this first. It points every AWS setting at an in-process emulation (no account, no
network, no local profile), makes the project and bench/ importable, and installs the meter.

    import inprocess  # noqa: F401  (first: settings before boto3, pynamodb or the app)
    METER = inprocess.METER
"""
from __future__ import annotations

import os
import sys

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.update({"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                   "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                   "SOCIALINBOX_STAGE": "local", "RESOURCE_PREFIX": "socialinbox-bench", "AWS_XRAY_SDK_ENABLED": "false",
                   "LOG_LEVEL": "ERROR"})
for _name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
    os.environ.pop(_name, None)
for _path in (os.path.join(PROJECT, "bench"), PROJECT):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import moto  # noqa: E402,F401  (before any boto3 client exists)

import wru  # noqa: E402

METER = wru.WruMeter(wru.Images("us-east-1"))
METER.install()
