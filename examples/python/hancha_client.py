#!/usr/bin/env python3
"""A county system's side of hancha, with nothing but Python's standard library.

Two things every county system needs:

* verify a webhook hancha POSTed (Standard Webhooks: `webhook-id`, `webhook-timestamp`,
  `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one `v1,` per secret in
  force during a rotation); the `standardwebhooks` package on PyPI does the same;
* follow the event stream over HTTP/JSON (`POST /v1/Watch`, one JSON event per line), keeping
  the last cursor handled in a file, so that the next run resumes after it: nothing missed,
  nothing twice.

    hancha_client.py verify --secret whsec_… --headers headers.json --body body.json
    hancha_client.py watch --url http://127.0.0.1:7540 --cursor-file cursor.txt [--token hct_…]
                           [--types answer.received,notice.received] [--idle 5]

`verify` exits 0 and prints the event's id and type when the signature holds, 1 when it does
not. `watch` prints one line per event (cursor, type, message) and stores the last cursor.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.request

TOLERANCE_SECONDS = 5 * 60


class WebhookVerificationError(Exception):
    pass


def verify_webhook(secret, headers, body, now=None, tolerance=TOLERANCE_SECONDS):
    """The event a webhook carries, once its signature and timestamp are checked.

    `secret` is the `whsec_…` string hancha showed when the endpoint was added; `headers` a dict
    (any case); `body` the raw bytes received, before any JSON parsing."""
    headers = {name.lower(): value for name, value in headers.items()}
    try:
        message_id = headers["webhook-id"]
        timestamp = headers["webhook-timestamp"]
        signatures = headers["webhook-signature"]
    except KeyError as missing:
        raise WebhookVerificationError(f"missing header {missing}") from None
    now = time.time() if now is None else now
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        raise WebhookVerificationError("timestamp outside the tolerance: a replay or a wrong clock")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in signatures.split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return json.loads(body)
    raise WebhookVerificationError("no signature matches")


def watch(url, after, token=None, types=(), idle=5):
    """The events after cursor `after`, as the node sends them, until `idle` seconds pass
    without one."""
    request = urllib.request.Request(
        url.rstrip("/") + "/v1/Watch",
        data=json.dumps({"after": str(after), "types": list(types), "idleSeconds": idle}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=idle + 30) as response:
        for line in response:
            if not line.strip():
                continue
            event = json.loads(line)
            if "error" in event:
                raise RuntimeError(f"the stream broke off: {event['error'].get('message')}")
            yield event


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="verify one webhook delivery")
    verify.add_argument("--secret", required=True)
    verify.add_argument("--headers", required=True, help="a JSON object of the request's headers")
    verify.add_argument("--body", required=True, help="the raw request body")
    follow = commands.add_parser("watch", help="print the events after the stored cursor")
    follow.add_argument("--url", required=True, help="the node's web listener")
    follow.add_argument("--cursor-file", required=True)
    follow.add_argument("--token", default=os.environ.get("HANCHA_TOKEN"))
    follow.add_argument("--types", default="", help="comma-separated event types")
    follow.add_argument("--idle", type=int, default=5)
    args = parser.parse_args()

    if args.command == "verify":
        with open(args.headers, encoding="utf-8") as file:
            headers = json.load(file)
        with open(args.body, "rb") as file:
            body = file.read()
        try:
            event = verify_webhook(args.secret, headers, body)
        except WebhookVerificationError as error:
            print(f"refused: {error}", file=sys.stderr)
            return 1
        print(f"verified {event['data']['id']} {event['type']}")
        return 0

    after = "0"
    if os.path.exists(args.cursor_file):
        with open(args.cursor_file, encoding="utf-8") as file:
            after = file.read().strip() or "0"
    types = [name for name in args.types.split(",") if name]
    for event in watch(args.url, after, args.token, types, args.idle):
        if event.get("type"):
            print(f"{event['cursor']} {event['type']} {event.get('messageId', '-')}")
        # an event without a type is progress: nothing for this filter up to its cursor
        # stored after each event handled: a crash here repeats at most this one
        with open(args.cursor_file, "w", encoding="utf-8") as file:
            file.write(event["cursor"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
