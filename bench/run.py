"""`make bench`: every benchmark in turn (about 25 minutes on 2 CPUs), then bench/RESULTS.md and the
figures of the README's Performance section rewritten. With BENCH_BEFORE naming a checkout of the
code before a change, the 500-ticket storm (`triage_compare`) runs it beside this code.

`python -m bench.run intake slack ...` re-runs the items named (see ITEMS) on their own: their figures
in bench/results.json are replaced, dated, and the rest kept."""

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


def items(workdir: Path) -> dict[str, Callable[[], Any]]:
    """Each benchmark by name, in the order `make bench` runs them."""
    return {
        "intake": lambda: intake.compare(["bare", *intake.DURABLE_ON, *BACKENDS], workdir),
        "profile": profile.profile,
        "slack": lambda: [intake.slack_ack(kind, workdir) for kind in BACKENDS],
        "triage": lambda: [triage.throughput(kind, n, workdir) for kind in BACKENDS for n in triage.WORKERS],
        "memory": lambda: triage.memory("sqlite", workdir),
        "economy": lambda: economy.economy(workdir),
        "storm": lambda: storm.storm(workdir),
        "triage_compare": lambda: triage.compare(workdir),
    }


ITEMS = tuple(items(Path()))


def main(names: list[str]) -> None:
    unknown = sorted(set(names) - set(ITEMS))
    if unknown:
        raise SystemExit(f"bench: no item {', '.join(unknown)}; the items are {', '.join(ITEMS)}")
    started = time.monotonic()
    here = Path(__file__).parent
    alone = bool(names)  # items re-run on their own: the last full run's other figures are kept
    results: dict[str, Any] = (
        json.loads((here / "results.json").read_text()) if alone else {"machine": machine(), "timing": {}}
    )
    with tempfile.TemporaryDirectory(prefix="connbot-bench-") as tmp:
        for name, step in items(Path(tmp)).items():
            if alone and name not in names:
                continue
            t0, load_before = time.monotonic(), load()
            print(f"bench: {name} ... (load {load_before})", file=sys.stderr, flush=True)
            seen = machine()
            results[name] = step()
            took = round(time.monotonic() - t0)
            results["timing"][name] = {"seconds": took, "load": [load_before, load()]}
            if alone:
                results["timing"][name].update(date=seen["date"], cpu=seen["cpu"])
            print(f"bench: {name} done in {took} s (load {load()})", file=sys.stderr, flush=True)
    if not alone:
        results["seconds"] = round(time.monotonic() - started)
    (here / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (here / "RESULTS.md").write_text(report.render(results))
    readme = ROOT / "README.md"
    readme.write_text(report.replace_section(readme.read_text(), report.performance(results)))
    print(f"bench: all done in {round(time.monotonic() - started)} s; see bench/RESULTS.md", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
