"""A webhook receiver that verifies every delivery with the official
`standardwebhooks` library (PyPI), as a customer's endpoint would.

Prints its port, then serves until stdin closes:
- POST /hook: verify with the current secret; answer by mode (ok 204,
  down 503, gone 410); record {id, type, data, verified, signatures}, or, when
  refused by the mode, {id, answered} among the refused.
- POST /_control: {"secret"?, "mode"?} sets the secret and the mode.
- GET /_received: the recorded deliveries, as JSON; GET /_refused: the
  refused ones.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

state = {"secret": None, "mode": "ok", "received": [], "refused": []}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _body(self):
        return self.rfile.read(int(self.headers.get("content-length", "0")))

    def _answer(self, status, payload=None):
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        with lock:
            self._answer(200, state["refused" if self.path == "/_refused" else "received"])

    def do_POST(self):
        body = self._body()
        if self.path == "/_control":
            with lock:
                state.update(json.loads(body))
            return self._answer(200, {"ok": True})
        with lock:
            secret, mode = state["secret"], state["mode"]
        if mode in ("down", "gone"):
            status = 503 if mode == "down" else 410
            with lock:
                state["refused"].append({"id": self.headers.get("webhook-id"), "answered": status})
            return self._answer(status, {"error": "down for maintenance" if mode == "down" else "this endpoint is gone"})
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            payload = Webhook(secret).verify(body, headers)
            verified = True
        except WebhookVerificationError:
            payload, verified = {}, False
        with lock:
            state["received"].append({
                "id": headers.get("webhook-id"),
                "type": payload.get("type"),
                "data": payload.get("data"),
                "verified": verified,
                "signatures": len(headers.get("webhook-signature", "").split()),
            })
        self._answer(204 if verified else 400)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(server.server_address[1], flush=True)
sys.stdin.read()
server.shutdown()
