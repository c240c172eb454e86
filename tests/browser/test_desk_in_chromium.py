"""The desk in a real browser (headless Chromium from Debian's packages, driven by Selenium):
file a ticket from the form, answer its prompt with a click, watch the run page update itself
until the ticket is closed with its path highlighted; and the same with the lab, as `make run`
shows it to a newcomer: the default scenario, one approval, the real adapters."""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from bot.lab import Lab
from bot.lab import web as lab_web
from bot.web.app import create_app
from tests.fakes.desk import CLOSED_PATH, one_prompt_registry

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1100",
)


def _browser_or_skip():  # type: ignore[no-untyped-def]
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium package")
    if missing:
        reason = f"browser test needs {', '.join(missing)} (Debian packages chromium and chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def _wait(driver):  # type: ignore[no-untyped-def]
    """A 30 s WebDriverWait whose conditions are read again while the page is redrawn or replaced:
    an element not there yet, gone stale, or one Chromium says "does not belong to the document" (a
    stale element by another name, raised as a plain WebDriverException while a new page loads)."""
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        WebDriverException,
    )
    from selenium.webdriver.support.ui import WebDriverWait

    class Wait(WebDriverWait):
        def until(self, method, message=""):
            def again(d):
                try:
                    return method(d)
                except WebDriverException as exc:
                    if "does not belong to the document" not in str(exc):
                        raise
                    return False

            return super().until(again, message)

    return Wait(driver, 30, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))


def _serve(svc, lab: Lab | None = None) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The real app and an in-process worker on a free loopback port; yields the base URL."""
    app = create_app(svc.settings, svc)
    if lab:
        lab_web.install(app, lab)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    consumer = svc.queue.consumer(2, in_process=True)
    consumer.start()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        consumer.stop(graceful=True)


@pytest.fixture
def served(make_services) -> Iterator[str]:
    yield from _serve(make_services(registry=one_prompt_registry()))


@pytest.fixture
def served_lab(make_services, settings) -> Iterator[str]:
    with Lab(settings.data_dir, reconnect_seconds=0.2) as lab:
        yield from _serve(make_services(environ={**os.environ, **lab.environment()}), lab)


@pytest.mark.browser
def test_file_answer_and_watch_the_ticket_close(served):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _browser_or_skip()
    wait = WebDriverWait(driver, 30)
    try:
        driver.get(served + "/")
        form = driver.find_element(By.ID, "file-ticket")
        form.find_element(By.NAME, "summary").send_keys("Alice can't connect <b>since 9am</b>")
        form.find_element(By.NAME, "reporter").send_keys("alice@example.com")
        form.find_element(By.NAME, "user").send_keys("1001")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

        wait.until(lambda d: d.find_elements(By.ID, "live") and "/runs/" in d.current_url)
        run_tab = driver.current_window_handle
        wait.until(lambda d: d.find_element(By.ID, "live").get_attribute("data-state") == "waiting")
        assert driver.find_element(By.CSS_SELECTOR, ".progress.waiting").is_displayed()
        assert "<b>since 9am</b>" in driver.find_element(By.TAG_NAME, "h1").text  # shown as text, not markup

        driver.switch_to.new_window("tab")
        driver.get(served + "/prompts")
        card = driver.find_element(By.CSS_SELECTOR, "article.prompt")
        assert "Fix the configuration by hand" in card.text and "1001" in card.text
        card.find_element(By.NAME, "name").send_keys("Carol")
        card.find_element(By.CSS_SELECTOR, "button[data-answer=connected]").click()
        wait.until(
            lambda d: (
                "answered “Fixed, the app connects (connbot checks again)”"
                in d.find_element(By.CSS_SELECTOR, ".flash").text
            )
        )

        driver.switch_to.window(run_tab)  # never reloaded: the page updates itself
        wait.until(lambda d: d.find_element(By.ID, "live").get_attribute("data-done") == "true")
        live = driver.find_element(By.ID, "live")
        assert "closed" in live.find_element(By.CSS_SELECTOR, ".facts-line").text
        assert not live.find_elements(By.CSS_SELECTOR, ".progress")
        visited = [
            g.get_attribute("data-step")
            for g in live.find_elements(By.CSS_SELECTOR, ".graph-full g.node.visited")
        ]
        assert sorted(visited) == sorted(CLOSED_PATH)
        taken = {
            (p.get_attribute("data-from"), p.get_attribute("data-to"))
            for p in live.find_elements(By.CSS_SELECTOR, "path.edge.taken")
        }
        assert taken == set(itertools.pairwise(CLOSED_PATH))
        assert "Carol" in live.find_element(By.CSS_SELECTOR, "tr[data-step=fix_config_by_hand]").text
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "desk-run-closed.png"))

        driver.find_element(By.LINK_TEXT, "DESK-1").click()
        assert driver.find_element(By.ID, "status").text == "closed"
        assert "Closed: Close - configuration fixed" in driver.find_element(By.TAG_NAME, "main").text
    finally:
        driver.quit()


@pytest.mark.browser
def test_a_newcomer_files_the_default_lab_scenario_and_approves_with_one_click(served_lab):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = _browser_or_skip()
    # The live panel is re-rendered while the run moves: an element found just before a refresh goes stale.
    wait = _wait(driver)
    try:
        driver.get(served_lab + "/")
        assert "Lab: this is a simulation." in driver.find_element(By.ID, "lab-banner").text
        form = driver.find_element(By.ID, "file-ticket")
        assert (
            Select(form.find_element(By.NAME, "scenario")).first_selected_option.text == "Password mismatch"
        )
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

        wait.until(
            lambda d: (
                "/runs/" in d.current_url
                and d.find_elements(By.CSS_SELECTOR, "#live button[data-answer=approve]")
            )
        )
        assert "Lab: this is a simulation." in driver.find_element(By.ID, "lab-banner").text
        driver.find_element(By.CSS_SELECTOR, "#live input[name=name]").send_keys("Newcomer")
        driver.find_element(By.CSS_SELECTOR, "#live button[data-answer=approve]").click()

        wait.until(lambda d: d.find_element(By.ID, "live").get_attribute("data-done") == "true")
        live = driver.find_element(By.ID, "live")
        assert "closed" in live.find_element(By.CSS_SELECTOR, ".facts-line").text
        visited = {
            g.get_attribute("data-step")
            for g in live.find_elements(By.CSS_SELECTOR, ".graph-full g.node.visited")
        }
        assert {"compare_password", "reset_password", "close_password_fixed"} <= visited
        assert "Newcomer" in live.find_element(By.CSS_SELECTOR, "tr[data-step=reset_password]").text
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "lab-run-closed.png"))
    finally:
        driver.quit()
