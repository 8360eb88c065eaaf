"""A fake provider: the carrier, the rates feed and the SMS gateway a real shop would
call over HTTP. Standard library only, so it runs without Django:

    provider = FakeProvider(delivery_delay=(2.0, 8.0))
    provider.start()               # a thread serving http://127.0.0.1:<free port>
    ... provider.url, provider.tracking_hits("TRK-0001") ...
    provider.stop()

or by hand, for ``manage.py fastq_worker`` in another terminal:
``python shop/provider.py --port 8765``.

Endpoints (JSON):

- ``GET /track/<tracking id>``: ``{"tracking_id", "status": "in_transit" | "delivered",
  "delivered_at"}``. A parcel is delivered a random delay after it was first asked about.
- ``GET /rates``: ``{"base": "USD", "as_of", "rates": {"EUR": ..., ...}}``.
- ``GET /gold``: ``{"price_per_gram", "currency": "IRR", "as_of"}``.
- ``POST /sms`` with ``{"to", "text"}``: ``{"id"}``, or 422 ``{"error"}`` when the number
  is not in international format.
- ``GET /stats``: the calls received so far (for tests and the demo's summary).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PHONE = re.compile(r"^\+\d{8,15}$")


class FakeProvider:
    """The provider's state and an HTTP server for it on 127.0.0.1 (``port=0``: a free
    port, read it back from ``url``). Thread-safe."""

    def __init__(
        self,
        port: int = 0,
        delivery_delay: tuple[float, float] = (2.0, 8.0),
        seed: int | None = None,
    ) -> None:
        self._random = random.Random(seed)
        self._delay = delivery_delay
        self._lock = threading.Lock()
        self._deliver_at: dict[str, float] = {}  # tracking id -> monotonic time
        self._delivered_at: dict[str, datetime] = {}
        self._first_delivered_answer: dict[str, float] = {}  # tracking id -> monotonic
        self._hits: dict[str, list[float]] = defaultdict(list)  # tracking id -> times
        self._calls: Counter[str] = Counter()
        self._sms: list[dict[str, str]] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider._serve(self, "GET")

            def do_POST(self) -> None:
                provider._serve(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the shop logs what matters

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeProvider:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-provider", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def serve_forever(self) -> None:
        """Serves in this thread until Ctrl-C (for running the provider by hand)."""
        try:
            self._server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self._server.server_close()

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # What the provider saw, for tests and summaries.

    def tracking_hits(self) -> dict[str, list[float]]:
        """Monotonic times of the tracking queries, by tracking id."""
        with self._lock:
            return {k: list(v) for k, v in self._hits.items()}

    def delivered_answers(self) -> dict[str, float]:
        """Monotonic time of the first "delivered" answer, by tracking id: a shop that
        stops asking about delivered parcels sends no query for that id after it."""
        with self._lock:
            return dict(self._first_delivered_answer)

    def calls(self) -> dict[str, int]:
        """Requests served, by endpoint."""
        with self._lock:
            return dict(self._calls)

    def sms_sent(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self._sms)

    # The endpoints.

    def _track(self, tracking_id: str) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            self._hits[tracking_id].append(now)
            deliver_at = self._deliver_at.setdefault(
                tracking_id, now + self._random.uniform(*self._delay)
            )
            if now >= deliver_at and tracking_id not in self._delivered_at:
                self._delivered_at[tracking_id] = datetime.now(UTC)
            delivered = self._delivered_at.get(tracking_id)
            if delivered:
                self._first_delivered_answer.setdefault(tracking_id, now)
        return {
            "tracking_id": tracking_id,
            "status": "delivered" if delivered else "in_transit",
            "delivered_at": delivered.isoformat() if delivered else None,
        }

    def _rates(self) -> dict[str, Any]:
        with self._lock:
            jitter = self._random.uniform(0.99, 1.01)
        base = {"EUR": 0.92, "GBP": 0.79, "TRY": 34.2, "IRR": 42_100.0, "AED": 3.6725}
        return {
            "base": "USD",
            "as_of": datetime.now(UTC).isoformat(),
            "rates": {k: round(v * jitter, 6) for k, v in base.items()},
        }

    def _gold(self) -> dict[str, Any]:
        now = datetime.now(UTC)
        with self._lock:
            price = round(self._random.uniform(3_900_000, 4_100_000), 2)
        return {"price_per_gram": price, "currency": "IRR", "as_of": now.isoformat()}

    def _send_sms(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        to, text = str(body.get("to", "")), str(body.get("text", ""))
        if not PHONE.match(to):
            return 422, {"error": f"not an international phone number: {to!r}"}
        with self._lock:
            self._sms.append({"to": to, "text": text})
            sms_id = f"SMS-{len(self._sms):06d}"
        return 200, {"id": sms_id}

    def _serve(self, request: BaseHTTPRequestHandler, method: str) -> None:
        path = request.path.split("?", 1)[0]
        endpoint = path.split("/")[1] if path.count("/") else path
        with self._lock:
            self._calls[endpoint] += 1
        status, payload = 404, {"error": f"no such endpoint: {method} {path}"}
        if method == "GET" and path.startswith("/track/") and len(path) > len("/track/"):
            status, payload = 200, self._track(path[len("/track/") :])
        elif method == "GET" and path == "/rates":
            status, payload = 200, self._rates()
        elif method == "GET" and path == "/gold":
            status, payload = 200, self._gold()
        elif method == "GET" and path == "/stats":
            status, payload = 200, {"calls": self.calls(), "sms": len(self.sms_sent())}
        elif method == "POST" and path == "/sms":
            length = int(request.headers.get("Content-Length") or 0)
            try:
                body = json.loads(request.rfile.read(length) or b"{}")
            except ValueError:
                status, payload = 400, {"error": "body is not JSON"}
            else:
                status, payload = self._send_sms(body if isinstance(body, dict) else {})
        data = json.dumps(payload).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the fake provider until Ctrl-C.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--delivery-delay",
        type=float,
        nargs=2,
        default=(60.0, 600.0),
        metavar=("MIN", "MAX"),
        help="seconds from a parcel's first query to its delivery (default 60 600)",
    )
    options = parser.parse_args()
    low, high = options.delivery_delay
    provider = FakeProvider(port=options.port, delivery_delay=(low, high))
    print(f"fake provider on {provider.url}; Ctrl-C stops it", flush=True)
    provider.serve_forever()


if __name__ == "__main__":
    main()
