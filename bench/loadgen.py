"""Open-loop load at a fixed rate, from its own process.

`python -m bench.loadgen REQUESTS.json RATE BASE_URL`

REQUESTS.json is a list of {"path", "headers", "body"}; request i is due at start + i/RATE. Latency
is measured from when a request was due (not when a free thread sent it), so a server that falls
behind shows it (no coordinated omission). Prints one JSON line: counts by status and percentiles.
"""

from __future__ import annotations

import http.client
import itertools
import json
import sys
import threading
import time
import urllib.parse
from collections import Counter
from typing import Any

from bench.common import percentile

THREADS = 32


def run(requests: list[dict[str, Any]], rate: float, base: str) -> dict[str, Any]:
    netloc = urllib.parse.urlsplit(base).netloc
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    order = itertools.count()
    start = time.perf_counter() + 0.2

    def worker() -> None:
        conn = http.client.HTTPConnection(netloc, timeout=30)
        while (i := next(order)) < len(requests):
            due = start + i / rate
            if (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            req = requests[i]
            try:
                conn.request("POST", req["path"], body=req["body"].encode(), headers=req["headers"])
                resp = conn.getresponse()
                resp.read()
                status = str(resp.status)
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection(netloc, timeout=30)
                status = type(exc).__name__
            took = time.perf_counter() - due
            with lock:
                latencies.append(took * 1000)
                statuses[status] += 1
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {
        "sent": len(requests),
        "seconds": round(elapsed, 3),
        "rate": rate,
        "statuses": dict(statuses),
        "ok": sum(n for s, n in statuses.items() if s.startswith("2")),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies, default=0), 2),
    }


if __name__ == "__main__":
    path, rate, base = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    with open(path, encoding="utf-8") as f:
        print(json.dumps(run(json.load(f), rate, base)))
