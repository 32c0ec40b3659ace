"""Schemathesis hooks for Anchor's API contract test.

An Idempotency-Key names one request: a client that sends the same key with
a different request is refused (422 `idempotency_key_reused`, as the
idempotency draft says), which no JSON Schema can express. Generated keys
repeat (Schemathesis likes short values such as "0"), so before each call a
well-formed key is replaced by a fresh one, as a real client makes; a
missing or malformed key is left as generated, for the checks that expect
a refusal.
"""

import re
import uuid

import schemathesis

WELL_FORMED = re.compile(r"^[!-~]{1,255}$")


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = kwargs.get("headers") or {}
    for name in list(headers):
        if name.lower() == "idempotency-key" and WELL_FORMED.match(str(headers[name])):
            headers[name] = f"contract-{uuid.uuid4()}"
    for name in list(case.headers or {}):
        if name.lower() == "idempotency-key" and WELL_FORMED.match(str(case.headers[name])):
            case.headers[name] = f"contract-{uuid.uuid4()}"
