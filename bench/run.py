"""`make bench`: every benchmark in turn (a few minutes), then bench/RESULTS.md rewritten."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import economy, intake, report, triage
from bench.common import machine

BACKENDS = ("sqlite", "postgres+redis")


def main() -> None:
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine()}
    with tempfile.TemporaryDirectory(prefix="connbot-bench-") as tmp:
        workdir = Path(tmp)
        steps = [
            ("intake", lambda: [intake.intake(kind, workdir) for kind in BACKENDS]),
            ("slack", lambda: [intake.slack_ack(kind, workdir) for kind in BACKENDS]),
            ("triage", lambda: [triage.throughput(kind, n, workdir) for kind in BACKENDS for n in triage.WORKERS]),
            ("memory", lambda: triage.memory("sqlite", workdir)),
            ("economy", lambda: economy.economy(workdir)),
        ]
        for name, step in steps:
            t0 = time.monotonic()
            print(f"bench: {name} ...", file=sys.stderr, flush=True)
            results[name] = step()
            print(f"bench: {name} done in {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    results["seconds"] = round(time.monotonic() - started)
    here = Path(__file__).parent
    (here / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (here / "RESULTS.md").write_text(report.render(results))
    print(f"bench: all done in {results['seconds']} s; see bench/RESULTS.md", file=sys.stderr)


if __name__ == "__main__":
    main()
