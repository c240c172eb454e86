"""`make bench`: every benchmark in turn (about 20 minutes on 2 CPUs), then bench/RESULTS.md and the
figures of the README's Performance section rewritten. With BENCH_BEFORE naming a checkout of the
code before a change, the 500-ticket storm (`triage_compare`) runs it beside this code."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import economy, intake, profile, report, storm, triage
from bench.common import ROOT, load, machine

BACKENDS = ("sqlite", "postgres+redis")


def main() -> None:
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine(), "timing": {}}
    with tempfile.TemporaryDirectory(prefix="connbot-bench-") as tmp:
        workdir = Path(tmp)

        steps: list[tuple[str, Callable[[], Any]]] = [
            ("intake", lambda: intake.compare(["bare", "durable", *BACKENDS], workdir)),
            ("profile", profile.profile),
            ("slack", lambda: [intake.slack_ack(kind, workdir) for kind in BACKENDS]),
            (
                "triage",
                lambda: [triage.throughput(kind, n, workdir) for kind in BACKENDS for n in triage.WORKERS],
            ),
            ("memory", lambda: triage.memory("sqlite", workdir)),
            ("economy", lambda: economy.economy(workdir)),
            ("storm", lambda: storm.storm(workdir)),
            ("triage_compare", lambda: triage.compare(workdir)),
        ]
        for name, step in steps:
            t0, load_before = time.monotonic(), load()
            print(f"bench: {name} ... (load {load_before})", file=sys.stderr, flush=True)
            results[name] = step()
            took = round(time.monotonic() - t0)
            results["timing"][name] = {"seconds": took, "load": [load_before, load()]}
            print(f"bench: {name} done in {took} s (load {load()})", file=sys.stderr, flush=True)
    results["seconds"] = round(time.monotonic() - started)
    here = Path(__file__).parent
    (here / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (here / "RESULTS.md").write_text(report.render(results))
    readme = ROOT / "README.md"
    readme.write_text(report.replace_section(readme.read_text(), report.performance(results)))
    print(f"bench: all done in {results['seconds']} s; see bench/RESULTS.md", file=sys.stderr)


if __name__ == "__main__":
    main()
