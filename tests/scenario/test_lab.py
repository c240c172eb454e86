"""Done when: every lab scenario, filed through the desk API with the lab running, is worked by the
real adapters against the lab's stand-ins (ARI, App Management API, SIP on loopback), routed
through the real PBX directory, and reaches its expected end and finding; a person's part is one
answer, given as a person would."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import server
from bot.lab import SCENARIOS, Lab
from bot.lab import web as lab_web
from bot.runs.fixes import ASKED_CAUSE
from bot.state.models import Prompt, Run
from bot.web.app import create_app
from playbook.diagnosis import diagnose, rules_of

# scenario: (the answers a person gives, by step; steps and outcomes the run must show; how it ends;
# the leading cause the run names). Before answering "fixed" the person repairs the fault (the lab's
# Repair), as they would have to.
EXPECTED: dict[str, tuple[dict[str, str], list[tuple[str, str]], tuple[str, int, str], str]] = {
    "healthy_after_reconnect": (
        {},
        [("check_status", "failed"), ("force_reconnect", "reconnected")],
        ("close", 1, "close_transient"),
        "transient",
    ),
    "wrong_server": (
        {},
        [
            ("force_reconnect", "still_failing"),
            ("check_config", "wrong_port"),
            ("fix_config", "fixed_connected"),
        ],
        ("close", 1, "close_config_fixed"),
        "wrong_settings",
    ),
    "missing_account": (
        {"create_account": "approve"},
        [
            ("check_config", "ok"),
            ("check_account", "missing"),
            ("check_backend", "db_ok"),
            ("create_account", "approved"),
            ("create_account", "created"),
            ("recheck_account", "registered"),
        ],
        ("close", 1, "close_account_fixed"),
        "account_missing",
    ),
    "password_mismatch": (
        {"reset_password": "approve"},
        [
            ("check_account", "exists"),
            ("compare_password", "password_mismatch"),
            ("reset_password", "approved"),
            ("reset_password", "updated_connected"),
        ],
        ("close", 1, "close_password_fixed"),
        "password_mismatch",
    ),
    "network_down": (
        {"fix_cause": "fixed"},
        [
            ("compare_password", "match"),
            ("escalate_l2", "escalated_l2"),
            ("check_network", "sip_no_response"),
            ("check_device_network", "sip_no_response"),
            ("fix_cause", "fixed"),
            ("recheck_l2", "registered"),
        ],
        ("close", 2, "close_l2_fixed"),
        "server_network_fault",
    ),
    "asterisk_module_down": (
        {"fix_cause": "fixed"},
        [
            ("check_network", "ok"),
            ("check_asterisk", "module_not_running"),
            ("fix_cause", "fixed"),
            ("recheck_l2", "registered"),
        ],
        ("close", 2, "close_l2_fixed"),
        "sip_stack_down",
    ),
    "database_down": (
        {"fix_cause": "fixed"},
        [
            ("check_asterisk", "up"),
            ("check_database", "asterisk_db_link_down"),
            ("fix_cause", "fixed"),
            ("recheck_l2", "registered"),
        ],
        ("close", 2, "close_l2_fixed"),
        "realtime_db_down",
    ),
    "logs_only": (
        {"fix_cause": "fixed"},
        [
            ("check_database", "db_ok"),
            ("read_client_logs", "nat_keepalive"),
            ("fix_cause", "fixed"),
            ("recheck_l2", "registered"),
        ],
        ("close", 2, "close_l2_fixed"),
        "nat_keepalive",
    ),
    "nothing_found": (
        {},
        [("check_database", "db_ok"), ("read_client_logs", "none_found"), ("escalate_l3", "escalated_l3")],
        ("escalate", 3, "escalate_l3"),
        "unknown",
    ),
    "asterisk_stopped": (
        {"fix_cause": "fixed"},
        [
            ("check_account", "error"),
            ("escalate_l2", "escalated_l2"),
            ("check_network", "tcp_refused"),
            ("check_asterisk", "down"),
            ("fix_cause", "fixed"),
            ("recheck_l2", "registered"),
        ],
        ("close", 2, "close_l2_fixed"),
        "asterisk_down",
    ),
    "sip_stack_down": (
        {"fix_cause": "fixed"},
        [
            ("compare_password", "match"),
            ("escalate_l2", "escalated_l2"),
            ("check_asterisk", "module_not_running"),
            ("fix_cause", "fixed"),
            ("recheck_l2", "registered"),
        ],
        ("close", 2, "close_l2_fixed"),
        "sip_stack_down",
    ),
    "realtime_db_down": (
        {"fix_cause": "fixed"},
        [
            ("check_account", "missing"),
            ("check_backend", "asterisk_db_link_down"),
            ("account_gate", "route 1"),
            ("escalate_l2", "escalated_l2"),
            ("fix_cause", "fixed"),
            ("recheck_l2", "registered"),
        ],
        ("close", 2, "close_l2_fixed"),
        "realtime_db_down",
    ),
    "user_network_blocked": (
        {"fix_cause": "fixed"},
        [
            ("check_network", "ok"),
            ("check_device_network", "sip_no_response"),
            ("fix_cause", "fixed"),
            ("recheck_l2", "registered"),
        ],
        ("close", 2, "close_l2_fixed"),
        "user_network_blocked",
    ),
    "missing_auth_object": (
        {"create_account": "approve"},
        [
            ("check_account", "incomplete"),
            ("check_backend", "db_ok"),
            ("create_account", "approved"),
            ("create_account", "created"),
            ("recheck_account", "registered"),
        ],
        ("close", 1, "close_account_fixed"),
        "account_incomplete",
    ),
    "contact_limit": (
        {"free_registration": "resolved"},
        [
            ("check_account", "exists"),
            ("compare_password", "match"),
            ("credentials_gate", "route 1"),
            ("free_registration", "resolved"),
            ("recheck_account", "registered"),
        ],
        ("close", 1, "close_account_fixed"),
        "contact_limit",
    ),
    "unknown_extension": (
        {"confirm_user": "wrong_extension"},
        [
            ("check_status", "error"),  # the app backend has no device for 2105
            ("force_reconnect", "error"),
            ("record_error", "error"),
            ("check_config", "error"),
            ("check_account", "missing"),
            ("account_gate", "route 2"),
            ("confirm_user", "wrong_extension"),
        ],
        ("close", 1, "close_wrong_extension"),
        "unknown_user",
    ),
}


@pytest.fixture
def lab(settings) -> Iterator[Lab]:
    with Lab(settings.data_dir, reconnect_seconds=0.05) as running:
        yield running


@pytest.fixture
def desk(lab, make_services, settings):
    """connbot configured by the lab's overlay on the environment (quicker timings on top), with
    incidents off: these tests follow the playbook's own paths, one ticket at a time. With incidents
    on (the default), a PBX-side fault joins the ticket to an incident instead
    (tests/scenario/test_incidents.py)."""
    overlay = {**lab.environment(), "CONNBOT_APP_POLL_INTERVAL": "0.02", "CONNBOT_NET_TIMEOUT": "0.2"}
    svc = make_services(
        settings=settings.model_copy(update={"incidents": False}), environ={**os.environ, **overlay}
    )
    app = create_app(svc.settings, svc)
    lab_web.install(app, lab)
    return svc, app.test_client()


def drive(
    svc, client, run_id: int, answers: dict[str, str], scenario: str = "", repair: bool = True, text: str = ""
) -> list[str]:
    """Work the queue until the run ends, answering each question as a person would: before
    answering "fixed" (or "resolved") they repair the fault (unless `repair` is off: a person who
    says so untruly);
    `text`, what they write with each answer.

    Returns the steps asked.
    """
    asked = []
    for _ in range(200):
        svc.queue.run_pending()
        with svc.store.tx() as s:
            run = s.get(Run, run_id)
            if run.state == "ended":
                return asked
            prompt = s.scalars(select(Prompt).where(Prompt.run_id == run_id, Prompt.state == "open")).first()
            question = (prompt.id, prompt.step) if prompt else None
        if question:
            assert question[1] in answers, f"unexpected question at {question[1]}"
            if answers[question[1]] in ("fixed", "resolved") and repair:
                assert client.post(f"/api/lab/scenarios/{scenario}/repair").status_code == 200
            answer = {"answer": answers[question[1]], "by": "Carol", **({"text": text} if text else {})}
            resp = client.post(f"/api/prompts/{question[0]}/answer", json=answer)
            assert resp.status_code == 200, resp.get_json()
            asked.append(question[1])
    raise AssertionError(f"run {run_id} did not end")


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_scenario_reaches_its_end_through_the_real_adapters(name, desk):
    svc, client = desk
    pb = svc.playbooks.current().playbook
    answers, findings, (kind, level, last), cause = EXPECTED[name]
    resp = client.post("/api/lab/tickets", json={"summary": "The app cannot connect", "scenario": name})
    assert resp.status_code == 201, resp.get_json()

    asked = drive(svc, client, resp.get_json()["run"], answers, name)

    assert asked == list(answers)
    with svc.store.tx() as s:
        run = s.get(Run, resp.get_json()["run"])
        steps = [(r.step, r.outcome) for r in run.steps]
        assert (run.pbx, run.ticket.user_ref) == (name, SCENARIOS[name].user)
        assert [f for f in steps if f in findings] == findings, steps
        assert (run.end_kind, run.ticket.level, run.steps[-1].step) == (kind, level, last)
        assert not any(r.outcome == "error" and (r.step, r.outcome) not in findings for r in run.steps), steps
        ends = pb.steps[last]
        if kind == "close":
            assert run.end_reason == ends.close and run.ticket.status == "closed"
        else:
            assert run.ticket.level == 3 and run.ticket.queue == "Level 3"
        assert [r.answered_by for r in run.steps if r.mode in ("human", "approval")] == ["Carol"] * len(
            answers
        )
        comments = "\n".join(c.body for c in run.ticket.comments)
        asked_about = run.facts.get(ASKED_CAUSE, {})
        named = asked_about.get("cause") or diagnose(rules_of(pb), run.facts)[0].id
        assert named == cause, " ".join(sorted(run.facts))
    if kind == "close" and asked_about:  # the closing comment names what the fix was for
        assert f"Cause: {asked_about['title']}." in comments
    assert f"Checked against PBX {name} (field lab_scenario is '{name}')." in comments
    secrets = svc.sections.environ
    for inst in svc.fleet.directory.instances:
        assert secrets[inst.ari.password_env] not in comments and secrets[inst.app.token_env] not in comments


def test_the_password_reset_really_fixes_the_lab_app(desk, lab):
    """What connbot changes lands in the stand-ins: after the reset the app's password is the PBX's."""
    svc, client = desk
    inst = lab.instances["password_mismatch"]
    assert inst.objects["auth"]["2004"]["password"] != inst.app_password
    resp = client.post(
        "/api/lab/tickets", json={"summary": "Bob cannot connect", "scenario": "password_mismatch"}
    )
    drive(svc, client, resp.get_json()["run"], {"reset_password": "approve"})
    assert inst.objects["auth"]["2004"]["password"] == inst.app_password and inst.last_error is None


def test_the_lab_writes_only_its_directory_into_the_data_dir(lab, settings):
    written = sorted(
        p.relative_to(settings.data_dir) for p in Path(settings.data_dir).rglob("*") if p.is_file()
    )
    assert written == [Path("lab/pbx-directory.yaml")]
    text = lab.directory.read_text()
    secrets = [v for k, v in lab.environment().items() if k.endswith(("_ARI_PASSWORD", "_APP_TOKEN"))]
    assert len(secrets) == 2 * len(SCENARIOS) and not any(secret in text for secret in secrets)


@pytest.mark.parametrize("asked", [True, False])
def test_serve_runs_the_lab_in_the_web_process_only_when_asked(asked, settings):
    before = dict(os.environ)
    server._prepare(settings)
    embedded = server._Embedded(settings, lab=asked)
    app = embedded.load()
    try:
        lab = lab_web.running(app)
        page = app.test_client().get("/").get_data(as_text=True)
        if not asked:
            assert lab is None and embedded.services.fleet is None and "simulation" not in page
            return
        assert lab is not None and embedded.services.sections.environ["CONNBOT_PBX_DIRECTORY"] == str(
            lab.directory
        )
        assert set(embedded.services.fleet.registries) == set(SCENARIOS)
        assert "Lab: this is a simulation." in page
        assert (
            app.test_client()
            .post("/api/lab/tickets", json={"summary": "x", "scenario": "nothing_found"})
            .status_code
            == 201
        )
    finally:
        embedded._stop_background(None, None)
    assert dict(os.environ) == before  # the lab configures connbot, not the process's environment


# scenario: what the one question of the level that can fix it says (the cause in plain words, with
# the findings that support it)
QUESTIONS = {
    "asterisk_stopped": ("fix_cause", ["Asterisk on 127.0.0.1 does not answer", "ARI refused", "refused"]),
    "sip_stack_down": ("fix_cause", ["runs, but not all of its SIP stack does", "res_pjsip.so"]),
    # only the registrar stopped: SIP still answers, so not "its SIP stack does not run"
    "asterisk_module_down": (
        "fix_cause",
        ["runs, but not all of its SIP stack does: res_pjsip_registrar.so not running", "module load"],
    ),
    "realtime_db_down": ("fix_cause", ["cannot use its realtime database", "Do not create accounts"]),
    # keep-alives failing in the client log (a NAT router's timeout, or the device's connection dropping)
    "logs_only": ("fix_cause", ["The app's registration is lost between keep-alives", "connection dropping"]),
    # SIP silent while ARI answers: the path, or a PJSIP transport that does not listen there
    "network_down": (
        "fix_cause",
        ["SIP messages to 127.0.0.1:", "a PJSIP transport of Asterisk listens"],
    ),
    "user_network_blocked": (
        "fix_cause",
        ["The user's device does not reach the PBX", "device's own test", "fail2ban after failed logins"],
    ),
    "missing_auth_object": (
        "create_account",
        ["lacks auth 2014", "Create only the missing objects (auth 2014)"],
    ),
    "unknown_extension": ("confirm_user", ["Neither the app backend nor the PBX has the user", "typo"]),
}


@pytest.mark.parametrize("name", list(QUESTIONS))
def test_the_one_question_names_the_cause_and_its_evidence(name, desk, lab):
    svc, client = desk
    step, phrases = QUESTIONS[name]
    answers = EXPECTED[name][0]
    resp = client.post("/api/lab/tickets", json={"summary": "The app cannot connect", "scenario": name})
    drive(svc, client, resp.get_json()["run"], answers, name)
    with svc.store.tx() as s:
        prompts = s.scalars(select(Prompt).where(Prompt.run_id == resp.get_json()["run"])).all()
        asked = [(p.step, p.question) for p in prompts]
        run = s.get(Run, resp.get_json()["run"])
        comments = [c.body for c in run.ticket.comments]
    assert [p for p, _ in asked] == [step], asked
    for phrase in phrases:
        assert phrase in asked[0][1], asked[0][1]
    # the cause is named in the comment that carries the question, and in the closing comment
    shown = [c for c in comments if phrases[0] in c]
    assert shown and phrases[0] in comments[-1], comments[-1]
    # and why a person is asked: the playbook leaves the fix to people, not a judgment call
    if svc.playbooks.current().playbook.steps[step].is_human:
        question = next(c for c in shown if c.startswith("Question for a person"))
        why = "Why a person is asked: the playbook leaves this step to a person: connbot cannot do it itself."
        assert why in question


def test_a_database_link_found_down_outranks_503s_read_as_overload(desk):
    """database_down, the fix reported as failing: the client log's 503s are no reason to hand level 3
    an overloaded PBX while res_config_pgsql.so is found not running and look-ups take 2 ms."""
    svc, client = desk
    resp = client.post(
        "/api/lab/tickets", json={"summary": "The app cannot connect", "scenario": "database_down"}
    )
    drive(svc, client, resp.get_json()["run"], {"fix_cause": "not_fixed"}, "database_down")
    with svc.store.tx() as s:
        run = s.get(Run, resp.get_json()["run"])
        to_l3 = next(c.body for c in run.ticket.comments if c.body.startswith("Escalated to level 3"))
    assert run.end_level == 3
    assert "Leading cause: The realtime database behind Asterisk is down" in to_l3
    assert "overload" not in to_l3 and "slow" not in to_l3


def questions(svc, client, scenario: str, answers: tuple[str, ...]) -> tuple[int, dict[str, str]]:
    """File a ticket of `scenario` and give `answers` to its questions in turn: the run, and the
    questions asked by step, the last one left open."""
    resp = client.post("/api/lab/tickets", json={"summary": "The app cannot connect", "scenario": scenario})
    run_id, asked = resp.get_json()["run"], {}
    for answer in (*answers, None):
        svc.queue.run_pending()
        with svc.store.tx() as s:
            prompt = s.scalars(select(Prompt).where(Prompt.run_id == run_id, Prompt.state == "open")).one()
            asked[prompt.step] = prompt.question
        if answer:
            client.post(f"/api/prompts/{prompt.id}/answer", json={"answer": answer, "by": "Carol"})
    return run_id, asked


@pytest.mark.parametrize(
    "scenario, user, created",
    [
        ("missing_account", "2003", "auth 2003, aor 2003, endpoint 2003"),  # no endpoint: all of it
        ("missing_auth_object", "2014", "auth 2014"),  # the endpoint names an auth that does not exist
    ],
)
def test_an_account_approval_says_exactly_what_it_creates(desk, scenario, user, created):
    svc, client = desk
    _, asked = questions(svc, client, scenario, ())
    assert asked["create_account"].startswith(
        f"If you approve, connbot will do this for the account of {user} on PBX {scenario}: Create {created} "
        "on the PrivateServer (what connbot did not find of the user's account). A new auth gets a new "
        "random password, which connbot also gives the user's app if the app backend has a device of the "
        "user. "
    )


@pytest.mark.parametrize(
    "scenario, user, said",
    [
        ("healthy_after_reconnect", "2001", "names no AOR."),
        # the auth object it names does not exist either: one question asks for both
        ("missing_auth_object", "2014", "names no AOR; it lacks auth 2014."),
    ],
)
def test_an_endpoint_that_names_no_aor_is_asked_by_hand_not_offered_for_creation(
    desk, lab, scenario, user, said
):
    """connbot creates only the objects an endpoint names: an endpoint with no AOR set (PJSIP's
    registrar answers the app 404) is no account it can complete, so nobody is asked to approve a
    creation that would then be refused."""
    svc, client = desk
    del lab.instances[scenario].objects["endpoint"][user]["aors"]
    run_id, asked = questions(svc, client, scenario, ())
    assert list(asked) == ["fix_account_by_hand"]
    assert (
        f"connbot's diagnosis: The user's endpoint on 127.0.0.1 is incomplete: the endpoint {said} Set "
        "the endpoint's AOR by hand, and create what it names that does not exist (connbot creates the "
        "objects an endpoint names but does not change an endpoint)." in asked["fix_account_by_hand"]
    )
    assert lab.instances[scenario].asterisk.writes == []
    with svc.store.tx() as s:
        rows = {r.step: r.summary for r in s.get(Run, run_id).steps}
    assert rows["check_account"].startswith(
        f"Account {user} is incomplete on the PBX: its endpoint names no AOR"
    )
    assert rows["account_gate"] == "The user's endpoint names no AOR."


def test_an_endpoint_without_auth_is_not_challenged(desk, lab):
    """As PJSIP: an endpoint that names no auth takes the app's REGISTER without a challenge, so the
    app registers and nothing is asked."""
    svc, client = desk
    del lab.instances["password_mismatch"].objects["endpoint"]["2004"]["auth"]  # its password differs
    resp = client.post("/api/lab/tickets", json={"summary": "x", "scenario": "password_mismatch"})
    assert drive(svc, client, resp.get_json()["run"], {}) == []
    with svc.store.tx() as s:
        run = s.get(Run, resp.get_json()["run"])
        assert (run.end_kind, [r.step for r in run.steps][-1]) == ("close", "close_transient")


def test_a_question_does_not_put_again_the_cause_a_person_just_answered(desk):
    """The reporter confirmed the unknown user is real: the approval to create the account says what
    changes, not "check the extension with the reporter" once more."""
    svc, client = desk
    _, asked = questions(svc, client, "unknown_extension", ("real_user",))
    assert list(asked) == ["confirm_user", "create_account"]
    assert "Check the extension in the ticket with the reporter" in asked["confirm_user"]
    assert (
        "If you approve, connbot will do this for the account of 2105 on PBX unknown_extension: "
        in (asked["create_account"])
    )
    assert "Check the extension" not in asked["create_account"]


def test_a_rejected_password_reset_is_not_proposed_again_by_the_next_levels(desk):
    """The approver sees whose account on which PBX changes, and rejects: the hand-overs and the
    second level's question say who rejected the reset instead of proposing it again, as do the run's
    diagnosis in the API and its page."""
    svc, client = desk
    resp = client.post("/api/lab/tickets", json={"summary": "x", "scenario": "password_mismatch"})
    run_id = resp.get_json()["run"]
    svc.queue.run_pending()
    page = client.get("/prompts").get_data(as_text=True)
    assert (
        "If you approve, connbot will do this for the account of 2004 on PBX password_mismatch: Set a new "
        "password on the PrivateServer and in the app"
    ) in page
    drive(svc, client, run_id, {"reset_password": "reject", "act_on_logs": "not_fixed"})
    with svc.store.tx() as s:
        run = s.get(Run, run_id)
        comments = [c.body for c in run.ticket.comments]
        asked = s.scalars(select(Prompt).where(Prompt.run_id == run_id, Prompt.step == "act_on_logs")).one()
    assert run.end_kind == "escalate" and run.end_level == 3
    to_l2, to_l3 = [c for c in comments if c.startswith(("Level 1 checks done", "Escalated to level 3"))]
    rejected = (
        "Its fix, “Change the password so the app and the PrivateServer agree”, was put for approval "
        "and rejected by Carol."
    )
    for said in (to_l2, asked.question, to_l3):
        assert "The app's credentials do not match the PBX's: the HA1 digests differ" in said
        assert rejected in said and "Set a new password" not in said
    assert (
        "Change the password so the app and the PrivateServer agree: Rejected (answered by Carol)" in to_l3
    )  # its row
    lead = client.get(f"/api/runs/{run_id}").get_json()["diagnosis"][0]  # the run's diagnosis, as shown
    assert lead["cause"] == "password_mismatch" and lead["action"] == rejected
    assert rejected in client.get(f"/runs/{run_id}").get_data(as_text=True)


def test_an_account_created_for_a_user_without_a_device_is_not_asked_about_as_missing(desk):
    """The reporter confirmed 2105 is real and connbot created its account, but the app backend has
    no device of 2105, so the app cannot register: the person is told that the account exists and
    the app backend has no device, not asked to create the account again."""
    svc, client = desk
    run_id, asked = questions(svc, client, "unknown_extension", ("real_user", "approve"))
    assert list(asked) == ["confirm_user", "create_account", "fix_account_by_hand"]
    with svc.store.tx() as s:
        created = [r.summary for r in s.get(Run, run_id).steps if r.step == "create_account"][-1]
    assert created.endswith(
        "; connbot could not give the app the new password: the app backend knows no device of user 2105."
    )
    question = asked["fix_account_by_hand"]
    assert (
        "connbot's diagnosis: The user has an account on the PBX but no device in the app backend: the "
        "PBX has an endpoint for the user, and the app backend answers that it knows no device of the user. "
        "Set up the user's app in the app backend for this account" in question
    )
    assert "account on the PrivateServer is missing" not in question


# scenario: the fix of its level 2 cause, as its question asks for it
FIX_ASKED = {
    "asterisk_stopped": "Start or restart Asterisk on 127.0.0.1"
    "; if it runs, check the host's firewall, which refuses connections the same way.",
    "logs_only": "Have the app send keep-alives more often",
}


@pytest.mark.parametrize("name", list(FIX_ASKED))
def test_level_3_is_told_that_level_2_tried_the_fix_not_asked_to_do_it_again(name, desk):
    svc, client = desk
    resp = client.post("/api/lab/tickets", json={"summary": "The app cannot connect", "scenario": name})
    run_id = resp.get_json()["run"]
    written = "Restarted it twice,\n  no change."
    assert drive(svc, client, run_id, {"fix_cause": "not_fixed"}, name, text=written) == ["fix_cause"]
    with svc.store.tx() as s:
        run = s.get(Run, run_id)
        comments = [c.body for c in run.ticket.comments]
        asked = s.scalars(select(Prompt).where(Prompt.run_id == run_id)).one().question
    assert FIX_ASKED[name] in asked
    handover = next(c for c in comments if c.startswith("Escalated to level 3"))
    # with what they wrote: level 3 reads what was tried
    assert "Asked to do its fix, Carol answered “Still failing” (Restarted it twice, no change)." in handover
    assert FIX_ASKED[name] not in handover


def test_a_user_confirmed_real_whose_account_creation_was_rejected_is_said_so(desk):
    """The reporter confirmed 2105 is real, the creation of its account was rejected: the question to
    create it by hand says the rejection, and level 2 is told both answers with the cause."""
    svc, client = desk
    run_id, asked = questions(svc, client, "unknown_extension", ("real_user", "reject", "not_resolved"))
    assert list(asked) == ["confirm_user", "create_account", "fix_account_by_hand", "read_client_logs"]
    rejected = (
        "Its fix, “Create the user's account, or what it lacks”, was put for approval and rejected by Carol."
    )
    assert rejected in asked["fix_account_by_hand"]
    with svc.store.tx() as s:
        comments = [c.body for c in s.get(Run, run_id).ticket.comments]
    handover = next(c for c in comments if c.startswith("Level 1 checks done"))
    assert (
        "Leading cause: Nobody knows this user (90%). Neither the app backend nor the PBX has the user the "
        "ticket names: the app backend has no device and the PBX no endpoint for the user. Asked to do its "
        f"fix, Carol answered “The user is real, create the account”. {rejected}"
    ) in handover


def test_a_hand_over_says_the_fix_tried_for_a_cause_that_no_longer_leads(desk):
    """connbot created the account of the user the reporter confirmed: nobody-knows-this-user leads no
    more, but level 2 is still told that its fix was approved and what the creation did."""
    svc, client = desk
    run_id, _ = questions(svc, client, "unknown_extension", ("real_user", "approve", "not_resolved"))
    with svc.store.tx() as s:
        comments = [c.body for c in s.get(Run, run_id).ticket.comments]
    handover = next(c for c in comments if c.startswith("Level 1 checks done"))
    assert "Leading cause: The app backend has no device for the user (90%)." in handover
    # level 1 was asked to put it right by hand and said it still fails: not proposed again as untried
    tried = "knows no device of the user. Asked to do its fix, Carol answered “Still failing”."
    assert tried in handover
    assert "Set up the user's app in the app backend" not in handover
    assert (
        "Earlier leading cause: Nobody knows this user. Asked to do its fix, Carol answered “The user is "
        "real, create the account”. Its fix, “Create the user's account, or what it lacks”, was approved "
        "by Carol and tried: Created account 2105 on the PBX"
    ) in handover


def test_a_questions_comment_carries_only_the_rows_not_on_the_ticket_yet(desk):
    """Two questions in a row: the second's comment shows what happened since the first (the
    rejected approval), not the first level's checks again."""
    svc, client = desk
    run_id, _ = questions(svc, client, "missing_account", ("reject",))
    with svc.store.tx() as s:
        comments = [c.body for c in s.get(Run, run_id).ticket.comments]
    approval, question = [c for c in comments if c.startswith(("Approval needed", "Question for a person"))]
    assert "Check the user's account on the PrivateServer" in approval
    # the decision reads where it went, and why in the findings' words
    assert (
        "- [L1] Decide whether the account can be changed: Create the user's account, or what it lacks "
        "(Asterisk's REST interface (ARI) answers connbot and the realtime database is answering.)\n"
    ) in approval
    assert "Check the user's account on the PrivateServer" not in question
    assert "Create the user's account" in question  # the rejected approval, the one row since


# scenario: what connbot's own network check says of a port that refuses (an answer, not silence)
REFUSED = {
    "asterisk_stopped": "its ARI port {ari} (TCP)",
    "sip_stack_down": "its SIP port {sip} (UDP: ICMP port unreachable)",
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_refused_port_is_said_to_refuse_not_to_be_a_broken_path(name, desk, lab):
    svc, client = desk
    resp = client.post("/api/lab/tickets", json={"summary": "The app cannot connect", "scenario": name})
    drive(svc, client, resp.get_json()["run"], EXPECTED[name][0], name)
    pbx = lab.instances[name].pbx
    with svc.store.tx() as s:
        run = s.get(Run, resp.get_json()["run"])
        said = next(r.summary for r in run.steps if r.step == "check_network")
        comments = "\n".join(c.body for c in run.ticket.comments)
    where = REFUSED[name].format(ari=pbx.ari.port, sip=pbx.sip.port)
    assert said == (
        f"The PBX host 127.0.0.1 refuses connections on {where}: nothing listens there, or a firewall "
        "rejects them."
    )
    # the device's UDP SIP probe got ICMP port unreachable: its row's words say no more than that
    assert (
        "Check the network from the user's device: Host or port unreachable (From the user's device, "
        "127.0.0.1 refuses connections for SIP over UDP" in comments
    )
    assert "Server unreachable" not in comments


def test_no_account_is_written_during_a_realtime_database_outage(desk, lab):
    svc, client = desk
    resp = client.post("/api/lab/tickets", json={"summary": "x", "scenario": "realtime_db_down"})
    drive(svc, client, resp.get_json()["run"], {"fix_cause": "fixed"}, "realtime_db_down")
    assert lab.instances["realtime_db_down"].asterisk.writes == []
    with svc.store.tx() as s:
        run = s.get(Run, resp.get_json()["run"])
        steps = [r.step for r in run.steps]
        closed = run.ticket.comments[-1].body
    assert "create_account" not in steps and "fix_account_by_hand" not in steps
    # the look-up's 404 is reported as the PBX's answer, not as an account that does not exist
    assert (
        "Check the user's account on the PrivateServer: The PBX does not find the account (Looking up "
        "account 2012, the PBX answered 404 after " in closed
    )
    assert "does not exist" not in closed and "The account is missing" not in closed


def test_fixed_without_a_fix_is_checked_and_not_closed(desk, lab):
    """The person answers Fixed but Asterisk still does not run: connbot's re-check sees it, says so,
    reads the logs and hands the ticket to level 3 without asking the same question again."""
    svc, client = desk
    resp = client.post("/api/lab/tickets", json={"summary": "x", "scenario": "asterisk_stopped"})
    asked = drive(
        svc, client, resp.get_json()["run"], {"fix_cause": "fixed"}, "asterisk_stopped", repair=False
    )
    assert asked == ["fix_cause"]
    with svc.store.tx() as s:
        run = s.get(Run, resp.get_json()["run"])
        steps = [(r.step, r.outcome) for r in run.steps]
        status, level = run.ticket.status, run.ticket.level
        recheck = next(r.summary for r in run.steps if r.step == "recheck_l2")
        comments = [c.body for c in run.ticket.comments]
        decided = next((r.said, r.summary) for r in run.steps if r.step == "diagnose_logs")
    assert ("recheck_l2", "still_failing") in steps and steps[-1] == ("escalate_l3", "escalated_l3")
    assert (status, level) != ("closed", 2) and level == 3
    assert recheck.startswith("Checked again: the app does not register yet.")
    # the answer reads as what the person said happened, not the button's "(connbot checks again)"
    answered = next(c for c in comments if c.startswith("Fix the cause connbot found: Answered"))
    assert answered.endswith(" UTC: Fixed")
    assert "- [L2] Fix the cause connbot found: Fixed (answered by Carol)\n" in comments[-1]
    # the hand-over says what connbot's check found after that answer, not only the answer
    assert (
        "Asked to do its fix, Carol answered “Fixed”. Checked again: the app does not register yet."
        in (comments[-1])
    )
    # the cause was asked about once already: the decision reads where the run really went, and why
    assert decided[0] == "Escalate to the third level"
    assert re.fullmatch(r"Leading cause: Asterisk is down \(\d+%\)\.", decided[1]), decided[1]


def test_repair_of_an_unknown_scenario_is_a_clear_404(desk):
    _, client = desk
    resp = client.post("/api/lab/scenarios/nope/repair")
    assert resp.status_code == 404 and "no lab scenario 'nope'" in resp.get_json()["message"]


def test_the_rows_say_each_thing_once_in_words(desk, lab):
    """Asterisk is stopped and the person's fix does not help: every row on the ticket reads in
    words, without the action's id, the request's path or a finding's code, and says each thing once
    (an answer and who gave it, a decision and where it went, an end and why: the paragraph above)."""
    svc, client = desk
    resp = client.post("/api/lab/tickets", json={"summary": "x", "scenario": "asterisk_stopped"})
    drive(svc, client, resp.get_json()["run"], {"fix_cause": "not_fixed"}, "asterisk_stopped")
    with svc.store.tx() as s:
        comments = [c.body for c in s.get(Run, resp.get_json()["run"]).ticket.comments]
    handover = next(c for c in comments if c.startswith("Escalated to level 3"))
    ari = lab.instances["asterisk_stopped"].pbx.ari.port
    rows = [
        "- [L1] Check the user's account on the PrivateServer: Failed "
        f"(ARI at 127.0.0.1:{ari} refused the connection)",
        "- [L1] Escalate to the second level: Escalated to level 2",
        "- [L2] Check the server services - Asterisk: Asterisk is down (The findings already say so: "
        "Asterisk's REST interface (ARI) refuses connbot's connection.)",
        "- [L2] Decide on the leading cause: Fix the cause connbot found (Leading cause: Asterisk is down",
        "- [L2] Fix the cause connbot found: Still failing (answered by Carol)",
        "- [L2] Decide on what the client logs show: Escalate to the third level (Leading cause: Asterisk",
    ]
    lines = handover.splitlines()
    for row in rows:
        assert any(line.startswith(row) for line in lines), row
    assert lines[-1] == "- [L2] Escalate to the third level: Escalated to level 3"  # said once, above
    answered = next(c for c in comments if c.startswith("Fix the cause connbot found: Answered"))
    assert answered.startswith("Fix the cause connbot found: Answered by Carol through the API at ")
    for said in comments:
        for leak in ("pbx.get_account", "http://", "/ari/", "ari: ", "Ari:", "; on to", "answered:", " via "):
            assert leak not in said, (leak, said)
