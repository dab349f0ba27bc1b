#!/usr/bin/env python3
"""Write N signed webhook requests for the ingest benchmark.

Usage: make-webhooks.py COUNT JOBS OUT

Each request is a whole HTTP/1.1 request with a unique webhook-id and a
timestamp of now, for one of JOBS jobs, cycling through the training
statuses so the consumer has real applies to do. Requests are separated
by a NUL byte; replay.lua reads them back. The secret is the one in the
benchmark's environment (REPLICATE_WEBHOOK_SECRET).
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "..", "tests", "fixtures", "replicate")
STATUSES = ["training.starting.json", "training.processing.json", "training.succeeded.json"]


def main(count, jobs, out_path):
    secret = os.environ["REPLICATE_WEBHOOK_SECRET"]
    key = base64.b64decode(secret[len("whsec_"):])
    templates = []
    for name in STATUSES:
        with open(os.path.join(FIXTURES, name)) as f:
            templates.append(json.load(f))
    original_id = templates[0]["id"]
    now = str(int(time.time()))

    with open(out_path, "wb") as out:
        for i in range(count):
            template = templates[(i // jobs) % len(templates)]
            body = json.dumps(template).replace(original_id, f"bench{i % jobs:06d}").encode()
            msg_id = f"msg_bench_{i:08d}"
            signed = msg_id.encode() + b"." + now.encode() + b"." + body
            signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
            head = (f"POST /api/webhooks/replicate HTTP/1.1\r\nHost: bench\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                    f"webhook-id: {msg_id}\r\nwebhook-timestamp: {now}\r\n"
                    f"webhook-signature: v1,{signature.decode()}\r\n\r\n").encode()
            out.write(head + body + b"\0")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
