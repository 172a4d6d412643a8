"""Schemathesis hooks for scripts/api-fuzz.

`map_body` puts resident-ID-shaped values (a valid 18-digit number, one with a wrong check
character, a 15-digit legacy one) into string fields of the generated requests: into every field
whose name says it holds an ID and into about a third of the others, chosen by the field's path so
that a case shrinks deterministically. The check `no_id_number_echoed` fails a response that is
not 2xx and holds any ID-shaped value the request carried: the node must never quote a resident
ID number back in a refusal.
"""

import json
import re
import zlib

import schemathesis

ID_VALUES = ["431322199002150042", "431322199002150043", "431322900215004"]
ID_SHAPED = re.compile(r"(?<!\d)(\d{17}[\dXx]|\d{15})(?!\d)")


def _salt(path):
    return zlib.crc32(path.encode())


def _plant(value, path=""):
    if isinstance(value, dict):
        return {key: _plant(inner, f"{path}.{key}") for key, inner in value.items()}
    if isinstance(value, list):
        return [_plant(inner, f"{path}[{index}]") for index, inner in enumerate(value)]
    if isinstance(value, str):
        salt = _salt(path)
        named = "resident" in path.lower() or path.lower().endswith("id")
        if named or salt % 3 == 0:
            return ID_VALUES[salt % len(ID_VALUES)]
    return value


@schemathesis.hook
def map_body(context, body):
    body = _plant(body)
    path = getattr(getattr(context, "operation", None), "path", "") or ""
    if isinstance(body, dict) and path.endswith("/Watch"):
        # the event stream waits for events: a second without one ends it
        body["idleSeconds"] = 1
    if isinstance(body, dict) and path.endswith("/AddWebhook"):
        # webhooks are delivered: never to anywhere but a closed loopback port
        body["url"] = "http://127.0.0.1:9/hook"
    return body


def _sent_ids(case):
    try:
        text = json.dumps(case.body, ensure_ascii=False)
    except (TypeError, ValueError):
        text = str(case.body)
    return set(ID_SHAPED.findall(text))


@schemathesis.check
def no_id_number_echoed(ctx, response, case):
    """No ID-shaped value sent in the request comes back in an error response."""
    if 200 <= response.status_code < 300:
        return None
    body = response.content.decode("utf-8", errors="replace")
    echoed = sorted(value for value in _sent_ids(case) if value in body)
    if echoed:
        raise AssertionError(f"an ID-shaped value of the request came back in a {response.status_code}: {body[:300]}")
    return None


@schemathesis.deserializer("application/x-ndjson")
def ndjson(ctx, response):
    """Reconcile's progress stream: every line must be JSON; the first is validated against the
    document's schema of one progress message (a line {"error": …} ends a failed run)."""
    lines = [line for line in response.content.decode("utf-8").splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]
    progress = [item for item in parsed if "error" not in item]
    return progress[0] if progress else {}
