"""A webhook receiver for tollgate's tests: verifies every delivery with the `standardwebhooks`
package (an implementation independent of tollgate's) and logs each one as a JSON line.

usage: receiver.py --log FILE --secrets FILE [--port N] [--status CODE] [--delay SECONDS]
                   [--fail-first]

Secrets are read from --secrets (one per line) on every request, so a test can register an
endpoint (learning its secret) after the receiver is listening. Prints "listening PORT".
--fail-first answers 500 to the first attempt of each webhook-id, so every event is redelivered.
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

args = None
seen = set()
lock = threading.Lock()


def verified(body, headers):
    try:
        with open(args.secrets, encoding="utf-8") as f:
            secrets = [line.strip() for line in f if line.strip()]
    except FileNotFoundError:
        secrets = []
    errors = []
    for secret in secrets:
        try:
            Webhook(secret).verify(body, headers)
            return True, None
        except WebhookVerificationError as error:
            errors.append(str(error))
    return False, "; ".join(errors) or "no secret"


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length).decode("utf-8")
        headers = {name.lower(): value for name, value in self.headers.items()}
        ok, error = verified(body, headers)
        webhook_id = headers.get("webhook-id")
        status = args.status
        with lock:
            first = webhook_id not in seen
            seen.add(webhook_id)
        if args.fail_first and first:
            status = 500
        if args.delay:
            time.sleep(args.delay)
        record = {
            "id": webhook_id,
            "timestamp": headers.get("webhook-timestamp"),
            "verified": ok,
            "error": error,
            "answered": status,
            "event": json.loads(body) if ok else body,
        }
        with lock, open(args.log, "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_):
        pass


def main():
    global args
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", required=True)
    parser.add_argument("--secrets", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--status", type=int, default=200)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--fail-first", action="store_true")
    args = parser.parse_args()
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
