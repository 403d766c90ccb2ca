"""A webhook receiver for Gangplank's tests that verifies signatures on its own (Python's hmac,
not Gangplank's code) and appends every request to a JSON-lines log.

usage: receiver.py WHSEC_SECRET STATUSES LOG [PORT]
STATUSES is a comma list answered in order (then 204); the bound port is printed first.
"""
import base64
import hashlib
import hmac
import http.server
import json
import sys
import threading
import time

secret, statuses, log = sys.argv[1], sys.argv[2], sys.argv[3]
port = int(sys.argv[4]) if len(sys.argv) > 4 else 0
key = base64.b64decode(secret[len("whsec_"):])
answers = [int(s) for s in statuses.split(",") if s]
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        msg_id = self.headers.get("webhook-id", "")
        stamp = self.headers.get("webhook-timestamp", "0")
        signed = f"{msg_id}.{stamp}.".encode() + body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        offered = [s.split(",", 1)[1] for s in self.headers.get("webhook-signature", "").split() if s.startswith("v1,")]
        fresh = abs(time.time() - int(stamp)) < 300
        standard_ok = fresh and any(hmac.compare_digest(expected, s) for s in offered)
        hub = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        hub_ok = hmac.compare_digest(hub, self.headers.get("x-hub-signature-256", ""))
        with lock:
            status = answers.pop(0) if answers else 204
            record = {
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode(),
                "standard_ok": standard_ok,
                "hub_ok": hub_ok,
                "answered": status,
            }
            with open(log, "a") as f:
                f.write(json.dumps(record) + "\n")
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
