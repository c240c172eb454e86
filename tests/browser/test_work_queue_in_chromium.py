"""The desk as a support agent's work queue, in headless Chromium: search and filter the ticket list,
read a prompt card (the finding shown, approve and reject told apart), act on a ticket from its page,
and every page usable 400 px wide without scrolling sideways."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.test_desk_in_chromium import ARTIFACTS, _browser_or_skip, _serve, _wait
from tests.fakes.adapters import account_not_found, observed, scripted_registry

# The shipped playbook up to the approval to create a missing account (for each of up to three tickets).
TO_APPROVAL = {
    "app.get_status": ["failed"],
    "app.reconnect": ["still_failing"],
    "app.get_last_error": ["found"],
    "app.check_config": ["ok"],
    "pbx.get_account": [account_not_found(user_known_app=True)],
    "pbx.check_database": [observed("db_ok", realtime_db="ok")],
}


@pytest.fixture
def served(make_services) -> Iterator[str]:
    yield from _serve(make_services(registry=scripted_registry({k: v * 3 for k, v in TO_APPROVAL.items()})))


def _file(base: str, summary: str, user: str) -> str:
    import requests

    resp = requests.post(f"{base}/api/tickets", json={"summary": summary, "user": user}, timeout=10)
    resp.raise_for_status()
    return str(resp.json()["key"])


def _wait_for_open_prompts(base: str, count: int) -> None:
    import time

    import requests

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if len(requests.get(f"{base}/api/prompts", timeout=10).json()["prompts"]) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} open prompts after 30 s")


@pytest.mark.browser
def test_search_and_filters_narrow_the_ticket_list(served):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    for summary, user in [
        ("Alice can't connect", "1001"),
        ("Bob: no audio", "1002"),
        ("Carol offline", "1003"),
    ]:
        _file(served, summary, user)
    _wait_for_open_prompts(served, 3)
    driver = _browser_or_skip()
    try:
        driver.get(served + "/")
        assert "3 tickets" in driver.find_element(By.ID, "ticket-count").text
        form = driver.find_element(By.ID, "filters")
        form.find_element(By.NAME, "q").send_keys("bob")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        # Every click loads a page: wait for its address before reading it (a stale element is read again).
        wait = _wait(driver)
        wait.until(lambda d: "q=bob" in d.current_url)
        rows = driver.find_elements(By.CSS_SELECTOR, "#tickets tbody tr")
        assert [r.get_attribute("data-key") for r in rows] == ["DESK-2"]
        assert "1 ticket matches" in driver.find_element(By.ID, "ticket-count").text
        assert "waiting" in rows[0].find_element(By.CSS_SELECTOR, "td.waiting .state").get_attribute("class")

        driver.find_element(By.ID, "clear-filters").click()
        wait.until(lambda d: "q=bob" not in d.current_url)
        form = driver.find_element(By.ID, "filters")
        Select(form.find_element(By.NAME, "status")).select_by_value("closed")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(lambda d: "status=closed" in d.current_url)
        assert not driver.find_elements(By.CSS_SELECTOR, "#tickets tbody tr")
        assert "No ticket matches" in driver.find_element(By.TAG_NAME, "main").text

        driver.get(served + "/?sort=key")
        keys = [
            r.get_attribute("data-key") for r in driver.find_elements(By.CSS_SELECTOR, "#tickets tbody tr")
        ]
        assert keys == ["DESK-1", "DESK-2", "DESK-3"]
        driver.find_element(By.CSS_SELECTOR, "th a.sort.sorted").click()  # the sorted column turns round
        wait.until(lambda d: d.current_url != served + "/?sort=key")
        keys = [
            r.get_attribute("data-key") for r in driver.find_elements(By.CSS_SELECTOR, "#tickets tbody tr")
        ]
        assert keys == ["DESK-3", "DESK-2", "DESK-1"]
    finally:
        driver.quit()


@pytest.mark.browser
def test_the_prompt_card_shows_the_finding_and_tells_approve_from_reject(served):
    from selenium.webdriver.common.by import By

    _file(served, "Alice can't connect", "1001")
    _wait_for_open_prompts(served, 1)
    driver = _browser_or_skip()
    try:
        driver.get(served + "/prompts")
        card = driver.find_element(By.CSS_SELECTOR, "#level-1 article.prompt.approval")
        finding = card.find_element(By.CSS_SELECTOR, ".question .finding")
        assert finding.is_displayed()  # not inside a collapsed list
        assert "Check the PBX's account database" in finding.text and "The database answers" in finding.text
        question = card.find_element(By.CSS_SELECTOR, ".question").text
        assert "If you approve, connbot will do this for the account of 1001: Create" in question
        assert "connbot's diagnosis: The PBX has no account for the user" in question
        assert "If you reject, nothing is changed" in question and "pbx.create_account" not in card.text
        assert "asked" in card.find_element(By.CSS_SELECTOR, "time.asked").text
        approve = card.find_element(By.CSS_SELECTOR, "button[data-answer=approve]")
        reject = card.find_element(By.CSS_SELECTOR, "button[data-answer=reject]")
        looks = [
            (b.value_of_css_property("background-color"), b.value_of_css_property("color"))
            for b in (approve, reject)
        ]
        assert looks[0] != looks[1] and looks[0][0] != looks[1][0]
        assert card.find_element(By.LINK_TEXT, "run 1").get_attribute("href").endswith("/runs/1")
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "desk-prompt-card.png"))
    finally:
        driver.quit()


@pytest.mark.browser
def test_the_ticket_page_answers_its_question_and_lets_an_agent_act(served):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _file(served, "Alice can't connect", "1001")
    _wait_for_open_prompts(served, 1)
    driver = _browser_or_skip()
    # The page's live panel may be redrawn while a wait reads it: a stale element is read again.
    wait = _wait(driver)
    try:
        driver.get(served + "/tickets/DESK-1")
        assert driver.find_element(By.ID, "level").text == "Level 1"
        question = driver.find_element(By.ID, "open-question")
        question.find_element(By.NAME, "name").send_keys("Carol")
        question.find_element(By.CSS_SELECTOR, "button[data-answer=reject]").click()
        wait.until(lambda d: "answered “Reject”" in d.find_element(By.CSS_SELECTOR, ".flash").text)
        assert "/tickets/DESK-1" in driver.current_url

        actions = driver.find_element(By.ID, "agent-actions")
        if actions.find_elements(By.NAME, "name"):
            assert actions.find_element(By.NAME, "name").get_attribute("value") == "Carol"  # remembered
        actions.find_element(By.NAME, "text").send_keys("Called Alice, she will retry at 3pm")
        actions.find_element(By.ID, "do-comment").click()
        wait.until(lambda d: "DESK-1: commented." in d.find_element(By.CSS_SELECTOR, ".flash").text)
        assert "Called Alice, she will retry at 3pm" in driver.find_element(By.TAG_NAME, "main").text

        actions = driver.find_element(By.ID, "agent-actions")
        Select(actions.find_element(By.NAME, "level")).select_by_value("2")
        actions.find_element(By.ID, "do-reassign").click()
        wait.until(lambda d: d.find_element(By.ID, "level").text == "Level 2")

        driver.find_element(By.ID, "do-close").click()
        wait.until(lambda d: d.find_element(By.ID, "status").text == "closed")
        assert "Closed by Carol" in driver.find_element(By.TAG_NAME, "main").text
    finally:
        driver.quit()


@pytest.mark.browser
def test_every_page_fits_400_px_without_scrolling_sideways(served):
    _file(served, "Alice can't connect to the PrivateServer from the office network", "1001")
    _wait_for_open_prompts(served, 1)
    driver = _browser_or_skip()
    try:
        driver.set_window_size(400, 900)
        pages = ["/", "/prompts", "/tickets/DESK-1", "/runs/1", "/dashboard", "/login", "/runs/abc"]
        for path in pages:
            driver.get(served + path)
            inner, scroll = driver.execute_script(
                "return [window.innerWidth, document.documentElement.scrollWidth]"
            )
            assert inner <= 420, f"the window is {inner} px wide, not about 400"
            assert scroll <= inner, f"{path} is {scroll} px wide in a {inner} px window"
        ARTIFACTS.mkdir(exist_ok=True)
        driver.get(served + "/runs/1")
        driver.save_screenshot(str(ARTIFACTS / "desk-run-400px.png"))
    finally:
        driver.quit()
