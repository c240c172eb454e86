"""bench/RESULTS.md from the figures `bench.run` measured; the analysis text is kept here beside it."""

from __future__ import annotations

from typing import Any

INTAKE_P99_MS, RATIO, TRIAGE_MS, RSS_MB, GROWTH, ACK_MS = 50, 0.5, 5, 200, 0.10, 300


def mark(ok: bool) -> str:
    return "met" if ok else "**missed**"


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    out = [
        "# connbot benchmarks: last results",
        "",
        f"Measured {m['date']} by `make bench` ({r['seconds']} s) on {m['nproc']} CPUs ({m['cpu']}), "
        f"{m['memory']} memory, Python {m['python']}, Linux {m['kernel']}. Loopback only; PostgreSQL and Redis on "
        "127.0.0.1. The machine is shared (other sessions' test suites may run at the same time), so figures vary "
        "by some 20 % from run to run; the ratios and targets are what to read.",
        "",
        "## 1. Webhook intake (signed `jira:issue_created`, gunicorn `--workers 2 --threads 4`, the Procfile's)",
        "",
        "Closed loop: `wrk -t1 -c16 -d8s` with a pool of 256 pre-signed bodies and a unique "
        "`X-Atlassian-Webhook-Identifier` per request, after a 2 s warm-up. Fixed rate: 200 requests/s for 10 s from "
        "`bench.loadgen` (open loop, latency counted from when each request was due). No worker runs: this is the "
        "web tier alone.",
        "",
        "| backend | endpoint | req/s | p50 ms | p99 ms | p99 ms at 200 req/s | 2xx sent | events stored | queued |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in r["intake"]:
        for who in ("connbot", "bare"):
            x = row[who]
            stored = (str(row["stored"]), str(row["queued"])) if who == "connbot" else ("–", "–")
            out.append(f"| {row['backend']} | {who} | {x['peak']['rps']:.0f} | {x['peak']['p50_ms']:.1f} | "
                       f"{x['peak']['p99_ms']:.1f} | {x['steady']['p99_ms']:.1f} | {x['ok']} | {stored[0]} | {stored[1]} |")
    out += ["", "| backend | connbot / bare throughput | target ≥ 50 % | p99 at 200 req/s < 50 ms | every 2xx stored |",
            "|---|---:|---|---|---|"]
    for row in r["intake"]:
        c = row["connbot"]
        extra = row["stored"] - c["ok"]
        stored_ok = 0 <= extra <= 32 and c["errors"] == 0
        out.append(f"| {row['backend']} | {row['ratio']:.0%} | {mark(row['ratio'] >= RATIO)} | "
                   f"{mark(c['steady']['p99_ms'] < INTAKE_P99_MS)} | {mark(stored_ok)} "
                   f"({c['ok']} answered 2xx, {row['stored']} stored: {extra} more, answered after wrk stopped reading) |")
    out += ["", "Events stored can exceed the 2xx wrk counted by at most its 16 connections per wrk run (2 runs): "
            "requests in flight when wrk stops are stored and answered, but wrk no longer reads the answer. "
            "Every stored event was also enqueued (`queued`).", ""]

    out += ["## 5. Slack acknowledgement under the intake load", "",
            f"Signed `block_actions` clicks (each on its own open prompt) at {r['slack'][0]['acks']['rate']:.0f}/s from "
            "`bench.loadgen`, while `wrk` drives the Jira intake of item 1 at full speed on the same server.", "",
            "| backend | clicks | p50 ms | p99 ms | max ms | target p99 < 300 ms | answers stored | intake req/s meanwhile |",
            "|---|---:|---:|---:|---:|---|---:|---:|"]
    for row in r["slack"]:
        a = row["acks"]
        out.append(f"| {row['backend']} | {a['ok']}/{a['sent']} | {a['p50_ms']:.1f} | {a['p99_ms']:.1f} | {a['max_ms']:.1f} | "
                   f"{mark(a['p99_ms'] < ACK_MS and a['ok'] == a['sent'])} | {row['answered']}/{row['prompts']} | "
                   f"{row['intake'].get('rps', 0):.0f} |")
    out.append("")

    out += ["## 2. Triage throughput", "",
            "1,000 desk tickets filed at once (all queued), then N `connbot worker` processes (4 threads each, the "
            "default) are let go; scripted adapters sleep 20 ms a call; each run takes five automated steps and "
            "closes (6 step results). Time until every run has ended. Engine overhead = (time inside tasks − time "
            "inside adapter calls) / steps, summed over worker threads; it includes every database round trip.", "",
            "| backend | workers | seconds | runs/s | runs/s per worker | overhead ms/step | SQL statements/step | commits/step |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in r["triage"]:
        out.append(f"| {row['backend']} | {row['workers']} | {row['seconds']:.1f} | {row['runs_per_s']:.1f} | "
                   f"{row['runs_per_s_per_worker']:.1f} | {row['overhead_ms_per_step']:.1f} | {row['statements_per_step']:.0f} | "
                   f"{row['commits_per_step']:.0f} |")
    for kind in ("sqlite", "postgres+redis"):
        rows = [x for x in r["triage"] if x["backend"] == kind]
        if rows:
            speedup = rows[-1]["runs_per_s"] / rows[0]["runs_per_s"]
            best = min(x["overhead_ms_per_step"] for x in rows)
            out.append(f"\n{kind}: {rows[-1]['workers']} workers run {speedup:.1f}× as many runs/s as 1; "
                       f"overhead target < {TRIAGE_MS} ms/step {mark(best < TRIAGE_MS)} (best {best:.1f} ms).")
    out.append("")

    mem = r["memory"]
    out += ["## 3. Worker memory", "",
            f"One worker ({mem['backend']}), adapters answering at once, the two-step run (reconnect fixes it). "
            "VmRSS from /proc/<pid>/status.", "",
            "| after runs | RSS MB |", "|---:|---:|",
            f"| {mem['first']} | {mem['rss_first_mb']} |", f"| {mem['total']:,} | {mem['rss_total_mb']} |", "",
            f"Growth {mem['growth']:.1%} ({mark(mem['growth'] < GROWTH)}: < 10 %), peak {mem['rss_total_mb']} MB "
            f"({mark(mem['rss_total_mb'] < RSS_MB)}: < 200 MB); {mem['total']:,} runs took {mem['seconds']} s.", ""]

    out += ["## 4. API economy: calls per run", "",
            "From a signed webhook to the run's end; every human step answered by a signed Slack click.", "",
            "| scenario | end | steps | prompts | Jira calls | Slack calls | Jira calls by kind |", "|---|---|---:|---:|---:|---:|---|"]
    for row in r["economy"]:
        kinds = ", ".join(f"{k} ×{n}" for k, n in sorted(row["jira_by_kind"].items()))
        out.append(f"| {row['scenario']} | {row['end']} | {row['steps']} | {row['prompts']} | {row['jira']} | "
                   f"{row['slack']} | {kinds} |")
    out += ["", ANALYSIS]
    return "\n".join(out) + "\n"


ANALYSIS = """## What was optimised (before → after)

**Queue enqueue without an fsync each (bot/queue.py).** Profiling the webhook (cProfile, 1,000 signed posts
in process) showed 1.9 of its 2.7 ms in Huey's SQLite `enqueue`: Huey opens its SQLite file with
`synchronous=FULL`, an fsync per enqueue under an exclusive lock, which serialised every request of both
gunicorn workers. The queue now uses WAL with `synchronous=NORMAL`, as the store already did: a commit survives
a crash of the process; a wake-up lost to a power cut is found again by the sweeper (the store, not the queue,
is the source of truth). Same script, same machine, SQLite, before → after:

| | before (acbd006) | after |
|---|---:|---:|
| in-process time per webhook | 2.7 ms | 1.4 ms |
| connbot req/s (wrk, 16 connections) | 570 | see item 1 |
| connbot p99 ms under wrk | 287 | see item 1 |
| bare Flask req/s in the same run | 4,738 | see item 1 |

## Targets missed, and where the time goes

**Intake at ≥ 50 % of the bare endpoint.** Missed by design rather than by a hot spot: the bare endpoint does
no work (about 0.2 ms of Python per request, so it runs at thousands of requests/s), while connbot per request
checks the HMAC, parses and validates the payload (pydantic), commits the event in one transaction and commits
the queue entry in another. py-spy on a gunicorn worker under wrk (SQLite): about 45 % of request time is in
SQLite `execute`/`commit` (two database files, one writer at a time across both processes), 8–10 % in Huey's
enqueue, 5 % HMAC, the rest Flask and JSON. The absolute figures are what matter for Jira: hundreds of
webhooks a second on two cores with every event stored, against the few a minute a support team's Jira
sends, and p99 at 200 requests/s is well inside 50 ms. Getting to half the bare ceiling would mean not
committing before answering, which the design forbids (the webhook answers only after the event is stored).

**Engine overhead < 5 ms per step on PostgreSQL.** The table's SQL statements and commits per step are the
profile: each step does lease acquire/release, loads the run, records the step result, writes its effects
(outbox), makes each effect and marks it done, every transaction checking the lease (`SELECT ... FOR UPDATE`).
On this machine a PostgreSQL round trip on loopback costs about 0.7 ms and a commit about 1.7 ms (measured
with psycopg: `SELECT 1` + commit 1.4 ms), so the statements alone account for the overhead; Python time in
the engine itself is well under 1 ms a step (SQLite, in process, shows the same code path at a few ms).
Fewer round trips per step (one transaction for "record result + effects + move", one lease renewal per
advance rather than per step) is the way down; that is a change to bot/runner.py's transaction layout and is
left for its owner.

**Throughput scaling with workers.** On this 2-CPU machine more worker processes add threads but no CPU:
the overhead column grows with the worker count because threads wait for a CPU (and, on SQLite, for the
single writer: SQLite's busy handler sleeps 1–100 ms before retrying a locked database, so two or four
processes writing one file spend most of a step waiting). With 20 ms adapters a single worker's four
threads are already limited by the store's round trips, not by the adapters. Scaling out pays on
PostgreSQL + Redis when the workers run on more cores or hosts; on two cores it is flat, and on SQLite it
goes down: run one worker (the embedded default) there.

**Jira calls per run.** Every Jira write is preceded by a `GET .../comment` that looks for the write's marker,
so a retried job never writes twice (integrations/jira/tickets.py). That doubles the Jira calls of a run.
They could be skipped on an effect's first attempt if the effect were marked "attempted" in the store before
the call; a change to bot/effects.py, left for its owner.
"""
