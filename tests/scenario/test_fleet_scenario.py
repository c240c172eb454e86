"""Done when: with a PBX directory of two customers, each ticket is checked against its own PBX and
app backend only (faked at the wire on different hosts), an unknown customer's ticket asks a
person which PBX, and a remembered answer routes that customer's next ticket without asking."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
import responses
from click.testing import CliRunner
from sqlalchemy import select

from bot.cli.main import main
from bot.runs import intake, prompts
from bot.runs.prompts import Via
from bot.state.models import Prompt, Run
from bot.web.views import run_dict
from tests.fakes import jira as fake_jira
from tests.fakes.fleet import SECRETS, Backends, backends, two_customers, use_directory
from tests.fakes.slack_api import CHANNEL
from tests.unit.integrations.wire_fakes import UNAUTHORIZED


@pytest.fixture
def fleet(monkeypatch, tmp_path) -> Iterator[Backends]:
    data = two_customers()
    use_directory(monkeypatch, tmp_path, data)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        world = backends(rsps)
        world.sip_ports = {i["name"]: i["sip"]["port"] for i in data["instances"]}  # type: ignore[attr-defined]
        yield world
    world.check_contracts()


def reaches_the_pbx(world: Backends, name: str, same_password: bool) -> None:
    """Make the app's settings agree with the instance, so the run goes on to the PBX checks."""
    phone = world.app[name].devices[0]
    phone.domain = f"{name}.example"
    phone.server = {"host": "127.0.0.1", "port": world.sip_ports[name], "transport": "udp"}  # type: ignore[attr-defined]
    if same_password:
        phone.password = "s3cret-pw"  # the PBX's
    phone.failure = lambda device: UNAUTHORIZED


def text_of(svc, run_id: int) -> str:
    """Everything a person can see of a run: comments, step summaries and evidence, the run's own data."""
    with svc.store.tx() as s:
        run = s.get(Run, run_id)
        return json.dumps([run_dict(run), [c.body for c in run.ticket.comments]])


def open_prompt(svc, run_id: int) -> Prompt | None:
    with svc.store.tx() as s:
        return s.scalars(select(Prompt).where(Prompt.run_id == run_id, Prompt.state == "open")).first()


def assert_isolated(text: str, mine: str, other: str) -> None:
    assert other not in text.lower(), f"{mine}'s ticket mentions {other}"
    for secret in SECRETS.values():
        assert secret not in text


def test_each_customer_is_checked_only_against_its_own_pbx_and_app(fleet, make_services):
    svc = make_services()
    _, acme_run = intake.file_desk_ticket(
        svc.context, "Alice can't connect", "", "alice@example.com", "1001", {"customer": "ACME"}
    )
    svc.queue.run_pending()
    assert fleet.hosts_called() == {"app.acme.test"}
    assert all(c.request.headers["Authorization"] == "Bearer acme-app-token" for c in fleet.rsps.calls)
    fleet.check_contracts()
    fleet.rsps.calls.reset()

    reaches_the_pbx(fleet, "globex", same_password=False)
    _, globex_run = intake.file_desk_ticket(
        svc.context, "Bob can't connect", "", "bob@example.com", "1001", {"customer": "globex"}
    )
    svc.queue.run_pending()
    assert fleet.hosts_called() == {"app.globex.test", "pbx.globex.test"}
    ari_auth = {c.request.headers["Authorization"] for c in fleet.calls_to("pbx.globex.test")}
    assert ari_auth == {f"Basic {base64.b64encode(b'connbot:globex-ari-pw').decode()}"}

    with svc.store.tx() as s:
        acme, globex = s.get(Run, acme_run), s.get(Run, globex_run)
        assert (acme.pbx, acme.state, acme.end_kind) == ("acme", "ended", "close")
        assert (globex.pbx, globex.pbx_reason) == ("globex", "field customer is 'globex'")
        assert ("compare_password", "password_mismatch") in [(r.step, r.outcome) for r in globex.steps]
        assert "Checked against PBX acme (field customer is 'ACME')." in acme.ticket.comments[0].body
        assert "Checked against PBX globex" in globex.ticket.comments[0].body
    assert_isolated(text_of(svc, acme_run), "acme", "globex")
    assert_isolated(text_of(svc, globex_run), "globex", "acme")


def test_a_jira_ticket_routes_by_the_reporters_domain_and_escalates_to_its_instances_target(
    fleet, make_services, monkeypatch
):
    fake_jira.configure(monkeypatch, ESCALATION='{"2": {"assignee": "everyone-l2"}}')
    jira = fake_jira.FakeJira(fleet.rsps)
    reaches_the_pbx(fleet, "globex", same_password=True)
    svc = make_services()
    payload = fake_jira.fixture("cloud_issue_created.json")
    payload["issue"]["fields"]["reporter"]["emailAddress"] = "bob@Globex.example"
    resp = fake_jira.deliver(svc, payload, "fleet-1")
    assert resp.status_code == 202

    issue = jira.issue("VOIP-7")
    assert "Checked against PBX globex (the reporter's e-mail domain is globex.example)." in issue.comments[0]
    assert issue.assignee == {"accountId": "globex-l2"} and issue.components == ["Globex voice"]
    assert fleet.hosts_called() - {"example.atlassian.net"} == {"app.globex.test", "pbx.globex.test"}
    assert not any("acme" in c.lower() for c in issue.comments)
    with svc.store.tx() as s:
        run = s.scalars(select(Run)).one()
        assert run.pbx == "globex" and ("compare_password", "match") in [
            (r.step, r.outcome) for r in run.steps
        ]


def test_an_unknown_customer_is_asked_for_and_a_remembered_answer_routes_the_next_ticket(
    fleet, make_services, tmp_path, monkeypatch
):
    svc = make_services()
    _, first = intake.file_desk_ticket(svc.context, "Carl can't connect", "", "carl@newco.example", "1001")
    svc.queue.run_pending()
    assert fleet.hosts_called() == set()  # nothing is checked before someone says where
    prompt = open_prompt(svc, first)
    assert prompt is not None and prompt.kind == "route" and prompt.step == "route_pbx"
    assert [tuple(o) for o in prompt.options] == [
        ("acme", "acme"),
        ("globex", "globex"),
        ("acme+remember", "acme, and remember it for newco.example"),
        ("globex+remember", "globex, and remember it for newco.example"),
    ]
    assert "'newco.example' is in no instance's list" in prompt.question
    with svc.store.tx() as s:
        asked = s.get(Run, first).ticket.comments[-1].body
    # why connbot asks rather than guesses
    assert "Why a person is asked: checking the wrong PBX would read, or change, another customer's" in asked

    with svc.store.tx() as s:
        assert prompts.answer_prompt(svc.context, s, prompt.id, "acme+remember", None, "bob", Via.DESK).won
    svc.queue.run_pending()
    assert fleet.hosts_called() == {"app.acme.test"}
    data = json.loads(text_of(svc, first))[0]
    assert (data["pbx"], data["pbx_reason"]) == ("acme", "chosen by bob, remembered for newco.example")
    assert data["steps"][0]["step"] == "route_pbx" and data["steps"][0]["mode"] == "human"
    assert data["steps"][0]["outcome"] == "acme" and data["end"] == "close"
    with svc.store.tx() as s:
        closing = s.get(Run, first).ticket.comments[-1].body
    assert (
        closing.startswith("Closed:")
        and "- [L1] Choose the PBX to check against: PBX acme (answered by bob: Remembered for "
        "newco.example.)\n"
        in closing
    )

    monkeypatch.setenv("CONNBOT_DATA_DIR", str(svc.settings.data_dir))
    shown = CliRunner().invoke(main, ["runs", "show", str(first)])
    assert "PBX: acme (chosen by bob, remembered for newco.example)" in shown.output

    _, second = intake.file_desk_ticket(svc.context, "Dora can't connect", "", "dora@NewCo.example", "1001")
    svc.queue.run_pending()
    assert open_prompt(svc, second) is None
    with svc.store.tx() as s:
        run = s.get(Run, second)
        assert run.pbx == "acme" and run.pbx_reason == (
            "the reporter's e-mail domain is newco.example, remembered for newco.example by bob"
        )
        assert (
            "Checked against PBX acme (the reporter's e-mail domain is newco.example, remembered"
            in run.ticket.comments[0].body
        )


def test_a_ticket_with_no_customer_key_offers_only_the_instances(fleet, make_services):
    svc = make_services()
    _, run_id = intake.file_desk_ticket(svc.context, "Someone can't connect", "", "front desk", "1001")
    svc.queue.run_pending()
    prompt = open_prompt(svc, run_id)
    assert [v for v, _ in prompt.options] == ["acme", "globex"]
    assert "the routing rules find no customer key on it" in prompt.question


def test_prompts_go_to_the_instances_slack_channel_and_a_route_is_answered_in_slack(fleet, make_slack):
    world = make_slack(None)
    fleet.app["acme"].devices[0].failure = lambda device: UNAUTHORIZED
    intake.file_desk_ticket(world.svc.context, "Alice can't connect", "", "alice@acme.example", "1001")
    _, unknown = intake.file_desk_ticket(
        world.svc.context, "Carl can't connect", "", "carl@newco.example", "1001"
    )
    world.work()
    posted = {m["channel"]: m for m in world.api.to("chat.postMessage")}
    assert set(posted) == {
        "C0ACME",
        CHANNEL,
    }  # acme's question in its channel; the routing question in the default
    assert "Choose the PBX" in json.dumps(posted[CHANNEL]["blocks"])
    assert "globex, and remember it for newco.example" in json.dumps(posted[CHANNEL]["blocks"])

    with world.svc.store.tx() as s:
        route = s.scalars(select(Prompt).where(Prompt.run_id == unknown)).one()
    from tests.fakes.slack_api import click

    resp = world.send(
        click(route.id, "connbot_answer:globex", user="W111", message_ts=route.channel_refs["slack"]["ts"])
    )
    assert resp.status_code == 200
    world.work()
    with world.svc.store.tx() as s:
        run = s.get(Run, unknown)
        assert run.pbx == "globex" and run.pbx_reason == "chosen by W111 in Slack"
    assert "app.globex.test" in fleet.hosts_called()


def test_an_approval_in_slack_names_the_user_and_the_pbx_it_changes_even_in_its_confirm_dialog(
    fleet, make_slack
):
    world = make_slack(None)
    reaches_the_pbx(fleet, "globex", same_password=False)
    intake.file_desk_ticket(world.svc.context, "Bob can't connect", "", "bob@globex.example", "1001")
    world.work()
    approval = world.open_prompt()
    assert approval.kind == "approval" and approval.step == "reset_password"
    blocks = world.api.to("chat.postMessage")[-1]["blocks"]
    assert blocks[2]["text"]["text"].startswith(
        "*Approval needed: Change the password so the app and the PrivateServer agree*\n"
        "If you approve, connbot will do this for the account of 1001 on PBX globex: Set a new password"
    )
    approve = next(b for b in blocks[-2]["elements"] if b["action_id"] == "connbot_answer:approve")
    confirm = approve["confirm"]["text"]["text"]
    assert len(confirm) <= 300
    assert confirm.startswith("If you approve, connbot will do this for the account of 1001 on PBX globex: ")
