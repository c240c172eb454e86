"""The run view: the playbook graph with the run's path highlighted, and its live updates."""

from __future__ import annotations

import datetime as dt
import html
import itertools
import re

from bot.runs import intake
from bot.state.models import Prompt
from bot.web.app import create_app
from integrations.base import ActionResult
from tests.fakes.adapters import scripted_registry
from tests.fakes.desk import CLOSED_PATH, PROMPT_PATH, csrf


def _classes(svg: str, kind: str) -> dict[str, set[str]]:
    """{step: classes} of the graph's nodes, or {"from>to": classes} of its edges."""
    if kind == "node":
        return {m[1]: set(m[0].split()) for m in re.findall(r'<g class="([^"]+)" data-step="([^"]+)"', svg)}
    return {
        f"{m[1]}>{m[2]}": set(m[0].split())
        for m in re.findall(r'<path class="([^"]+)" data-from="([^"]+)" data-to="([^"]+)"', svg)
    }


def test_a_waiting_run_highlights_its_path_and_the_step_it_waits_at(desk):
    svc, client = desk
    intake.file_desk_ticket(svc.context, "Alice can't connect", "", "", "1001")
    svc.queue.run_pending()
    page = client.get("/runs/1").get_data(as_text=True)
    nodes, edges = _classes(page, "node"), _classes(page, "edge")
    assert len(nodes) == len(svc.playbooks.current().playbook.steps)
    assert {s for s, c in nodes.items() if "visited" in c} == set(PROMPT_PATH)
    assert {s for s, c in nodes.items() if "current" in c} == {"fix_config_by_hand"}
    assert {e for e, c in edges.items() if "taken" in c} == {
        f"{a}>{b}" for a, b in itertools.pairwise(PROMPT_PATH)
    }
    assert "human" in nodes["fix_config_by_hand"] and "end-close" in nodes["close_config_fixed"]
    # A visited step's caption reads its outcome in words, cut to its box and whole in its tooltip.
    node = re.search(r'<g class="[^"]*" data-step="check_config">(.*?)</g>', page, re.S)
    assert node and (
        '<text class="outcome"' in node.group(1)
        and "The app points at the wrong…<title>The app points at the wrong server</title>" in node.group(1)
    )
    assert 'class="progress waiting"' in page and "Waiting for a person" in page
    assert 'data-answer="connected"' in page  # the question can be answered right here
    assert (
        "wrong_host" in page and "app.check_config found wrong_host" in page
    )  # outcome and evidence summary
    # The steps table reads each outcome in the playbook's words, its code small beside it.
    checked = re.search(r'<tr data-step="check_config">(.*?)</tr>', page, re.S)
    said = 'The app points at the wrong server <code class="meta">wrong_host</code>'
    assert checked and f'<td data-label="Outcome">{said}</td>' in checked.group(1)


def test_the_live_endpoint_follows_the_run_to_its_end(desk):
    svc, client = desk
    intake.file_desk_ticket(svc.context, "Alice can't connect", "", "", "1001")
    svc.queue.run_pending()
    before = client.get("/runs/1/live").get_json()
    assert (before["state"], before["done"]) == ("waiting", False)
    assert (
        client.get("/runs/1/live").get_json()["version"] == before["version"]
    )  # nothing moved, nothing to redraw
    with svc.store.tx() as s:
        prompt_id = s.query(Prompt).one().id
    client.post(
        f"/prompts/{prompt_id}/answer",
        data={"csrf_token": csrf(client, "/prompts"), "answer": "connected", "name": "Carol"},
    )
    svc.queue.run_pending()
    after = client.get("/runs/1/live").get_json()
    assert (after["state"], after["done"]) == ("ended", True) and after["version"] != before["version"]
    html = after["html"]
    path = CLOSED_PATH
    nodes, edges = _classes(html, "node"), _classes(html, "edge")
    assert {s for s, c in nodes.items() if "visited" in c} == set(path)
    assert not any("current" in c for c in nodes.values())
    assert {e for e, c in edges.items() if "taken" in c} == {f"{a}>{b}" for a, b in itertools.pairwise(path)}
    assert 'class="progress' not in html
    assert "state-closed" in html and "Carol" in html


def test_an_unknown_run_is_a_404_page(desk):
    _, client = desk
    resp = client.get("/runs/99")
    assert resp.status_code == 404 and "no run 99" in resp.get_data(as_text=True)


def _boxes(svg: str) -> dict[str, tuple[float, float, float, float]]:
    number = r'="([\d.]+)"'
    found = re.findall(
        rf'data-step="([^"]+)"><title>.*?</title><rect x{number} y{number} width{number} height{number}', svg
    )
    return {m[0]: tuple(float(v) for v in m[1:]) for m in found}


def _segments(d: str) -> list[tuple[float, float, float, float]]:
    points = [tuple(map(float, p.split(","))) for p in re.findall(r"[\d.]+,[\d.]+", d)]
    return [(*a, *b) for a, b in itertools.pairwise(points)]


def _crosses(seg: tuple[float, float, float, float], box: tuple[float, float, float, float]) -> bool:
    x1, y1, x2, y2 = seg
    bx, by, bw, bh = box
    return min(x1, x2) < bx + bw and max(x1, x2) > bx and min(y1, y2) < by + bh and max(y1, y2) > by


def test_the_diagram_is_laid_out_by_level_with_labelled_edges_that_pass_no_box(desk):
    svc, client = desk
    intake.file_desk_ticket(svc.context, "Alice can't connect", "", "", "1001")
    svc.queue.run_pending()
    page = client.get("/runs/1").get_data(as_text=True)
    full = page[page.index('<svg class="graph"') : page.index("</svg>")]
    boxes = _boxes(full)
    steps = svc.playbooks.current().playbook.steps
    assert len(boxes) == len(steps)
    lowest_l1 = max(y for sid, (_, y, _, _) in boxes.items() if steps[sid].level == 1)
    assert all(y > lowest_l1 for sid, (_, y, _, _) in boxes.items() if steps[sid].level == 2)
    edges = re.findall(r'<path class="edge[^"]*" data-from="([^"]+)" data-to="([^"]+)" d="([^"]+)"', full)
    assert len(edges) > 30
    for src, dst, d in edges:
        for seg in _segments(d):
            hit = [sid for sid, box in boxes.items() if _crosses(seg, box)]
            assert not hit, f"edge {src}->{dst} passes through {hit}"
    labels = re.findall(
        r'<text class="edge-label[^"]*" data-from="check_config" data-to="fix_config"[^>]*>', full
    )
    assert labels and "wrong host" in full
    assert 'aria-label="Legend"' in page and "ticket closed" in page
    path = page[page.index('<svg class="graph path-only"') :]
    path = path[: path.index("</svg>")]
    assert set(_boxes(path)) == set(PROMPT_PATH)  # the path-only view: just the visited steps


def test_a_waiting_run_is_not_redrawn_while_nothing_moves(desk):
    """The live panel is redrawn when its HTML changes: a ticking "asked 5 s ago" would redraw it
    every second and wipe out a name being typed into its question."""
    svc, client = desk
    intake.file_desk_ticket(svc.context, "Alice can't connect", "", "", "1001")
    svc.queue.run_pending()
    first = client.get("/runs/1/live").get_json()
    later = svc.context.clock() + dt.timedelta(minutes=5)
    svc.context.clock = lambda: later
    again = client.get("/runs/1/live").get_json()
    assert again["version"] == first["version"] and "asked at" in again["html"]


def test_the_run_page_shows_evidence_and_findings_as_tables_and_the_diagnosis_in_words(
    make_services, settings
):
    status = ActionResult(
        outcome="failed",
        summary="The app on device d1 failed to register.",
        evidence={"device_id": "d1", "registrar": {"host": "pbx1", "port": 5061}},
        facts={
            "device_id": "d1",
            "pbx": "<i>pbx1</i>",
            "ari": "refused",
            "sip_port": "refuses",
            "sip_target": "pbx1:5061/tls",
            "pjsip_stopped": ["res_pjsip.so", "chan_pjsip.so"],
            "user_known_app": True,
        },
    )
    svc = make_services(
        # one run's page: the findings name Asterisk down, which with incidents on would check the PBX
        settings=settings.model_copy(update={"incidents": False}),
        registry=scripted_registry({"app.get_status": [status], "app.reconnect": ["reconnected"]}),
    )
    client = create_app(svc.settings, svc).test_client()
    _, run_id = intake.file_desk_ticket(svc.context, "Alice can't connect", "", "", "1001")
    svc.queue.run_pending()
    page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    steps = page[page.index('<section id="run-steps">') : page.index('<section id="run-diagnosis">')]
    # a step's evidence is a table (nested objects as nested tables), not JSON
    assert '<th scope="row">host</th><td>pbx1</td>' in steps and "{" not in steps
    part = page[page.index('<section id="run-diagnosis">') :]
    cells = re.findall(
        r'<tr><td data-label="Finding"><code>([^<]+)</code></td><td data-label="Value">(.*?)</td></tr>', part
    )
    assert cells == [
        ("pbx", "&lt;i&gt;pbx1&lt;/i&gt;"),  # a value from outside is text, not markup
        ("ari", "refused"),
        ("sip_port", "refuses"),
        ("sip_target", "pbx1:5061/tls"),
        ("pjsip_stopped", "res_pjsip.so, chan_pjsip.so"),
        ("user_known_app", "yes"),
    ]
    assert "<i>pbx1</i>" not in page
    text = html.unescape(" ".join(re.sub(r"<[^>]+>", " ", part).split()))
    assert "Leading cause Asterisk is down (90 %) : Asterisk on <i>pbx1</i> does not answer" in text
    assert "Why ARI refused connbot's connection SIP pbx1:5061/tls refused the connection" in text
    assert (
        "What to do Start or restart Asterisk on <i>pbx1</i>; if it runs, check the host's firewall, which "
        "refuses connections the same way." in text
    )
    assert "What speaks against it" not in text and "device_id" not in part and "{" not in part
    api = client.get(f"/api/runs/{run_id}").get_json()
    assert api["findings"]["ari"] == "refused" and "device_id" not in api["findings"]
    assert [c["cause"] for c in api["diagnosis"]][:1] == ["asterisk_down"]
    assert api["diagnosis"][0]["supporting"] == [
        "ARI refused connbot's connection",
        "SIP pbx1:5061/tls refused the connection",
    ]
