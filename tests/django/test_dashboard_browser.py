"""The dashboard in a real browser: Debian's chromium and chromium-driver (installed by
scripts/bootstrap.sh), driven by Selenium with no browser download and no network beyond
the test server. While a real ``fastq_worker`` subprocess runs two long jobs, the test
logs in, checks the numbers on the page against the database, watches the page refresh
by itself, pauses a queue with the page's button, opens a task page, and saves
screenshots under build/screenshots/ (SQLite and PostgreSQL each their own).

Locally a missing chromium skips this file; under CI=true it fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone
from fastq_django import queues
from fastq_django.models import Job, Queue
from testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
DB = os.environ.get("FASTQ_TEST_DB", "sqlite")


def _missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} not installed (scripts/bootstrap.sh installs chromium, chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed (scripts/bootstrap.sh installs it)"
    return None


if (why := _missing()) is not None:
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"the browser test needs chromium in CI: {why}")
    pytest.skip(why, allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture
def browser() -> Iterator[Any]:
    # Selenium Manager would look for (and download) a browser: not here.
    os.environ["SE_OFFLINE"] = "true"
    os.environ["SE_AVOID_STATS"] = "true"
    profile = tempfile.mkdtemp(prefix="fastq-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1400,2000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _shot(driver: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{DB}-{name}.png"
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1400, max(900, min(int(height) + 100, 4000)))
    assert driver.save_screenshot(str(path)), f"could not save {path}"
    return path


def _read(driver: Any, selector: str) -> str:
    """The text of ``selector``, read in one script: the page redraws its live part every
    few seconds, and an element found before a redraw is gone after it."""
    text = driver.execute_script(
        "var e = document.querySelector(arguments[0]); return e ? e.textContent : null;", selector
    )
    assert text is not None, f"nothing matches {selector}"
    return " ".join(str(text).split())


def _text(driver: Any, queue: str, cls: str) -> str:
    return _read(driver, f'tr[data-queue="{queue}"] .{cls}')


def _wait(driver: Any, what: str, predicate: Any, timeout: float = 60) -> None:
    WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: predicate(d), what)


def test_dashboard_in_a_browser_while_a_worker_runs(live_server: Any, browser: Any, worker) -> None:
    user = User.objects.create_user("operator", password="s3cret-pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="fastq_django",
            codename__in=["view_job", "change_job", "view_queue", "change_queue"],
        )
    )
    # "other" is paused before the worker starts, so its depth holds still; two long
    # jobs keep "default" running; failures and a scheduled job fill the other panels.
    queues.pause("other", by="test")
    waiting = [tasks.on_other_queue.delay() for _ in range(7)]
    for i in range(3):
        tasks.fail.delay(f"browser failure {i}")
    quick = [tasks.add.delay(i, i) for i in range(12)]
    long_jobs = [tasks.record.delay(f"long-{i}", sleep=120) for i in range(2)]
    tasks.noop.apply_async(countdown=3600)
    w = worker(
        "--processes", "0", "--queues", "default,other", "--concurrency", "4", "--grace", "1"
    )
    deadline = time.monotonic() + 120
    while (
        Job.objects.filter(pk__in=[r.id for r in long_jobs], started_at__isnull=False).count() < 2
        or Job.objects.filter(task=tasks.fail.name, state="failed").count() < 3
        or Job.objects.filter(pk__in=[r.id for r in quick], state="succeeded").count() < 12
    ):
        assert w.proc.poll() is None, w.output()
        assert time.monotonic() < deadline, "the worker did not start the jobs:\n" + w.output()
        time.sleep(0.1)

    dashboard = live_server.url + "/admin/fastq_django/dashboard/"
    # Anonymous: the login page, then logged in the dashboard itself.
    browser.get(dashboard)
    assert "/admin/login/" in browser.current_url
    browser.find_element(By.NAME, "username").send_keys("operator")
    browser.find_element(By.NAME, "password").send_keys("s3cret-pw")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    _wait(browser, "the dashboard", lambda d: d.find_elements(By.ID, "fastq-queues"))
    assert browser.current_url.rstrip("/").endswith("/admin/fastq_django/dashboard")

    now = timezone.now()
    assert _text(browser, "other", "queue-depth") == str(
        Job.objects.filter(queue="other", state="queued", run_at__lte=now).count()
    )
    assert _text(browser, "other", "queue-depth") == "7"
    assert _text(browser, "other", "queue-state") == "paused"
    assert _text(browser, "default", "queue-running") == str(
        Job.objects.filter(queue="default", state="running").count()
    )
    assert _text(browser, "default", "queue-running") == "2"
    assert _text(browser, "default", "queue-scheduled") == "1"
    assert _text(browser, "default", "queue-state") == "active"
    assert _read(browser, "#fastq-hour-finished") == str(
        Job.objects.filter(state="succeeded", finished_at__gte=now - timedelta(hours=1)).count()
    )
    assert _read(browser, "#fastq-hour-finished") == "12"
    assert _read(browser, "#fastq-hour-failed") == str(
        Job.objects.filter(state__in=["failed", "dead"]).count()
    )
    assert _read(browser, 'tr[data-error-type="ValueError"] .failure-count') == "3"
    assert browser.find_elements(By.CSS_SELECTOR, "svg.fastq-chart rect"), "no bars drawn"
    _shot(browser, "dashboard")

    # The page refreshes by itself: three more jobs show up without a reload.
    for _ in range(3):
        tasks.on_other_queue.delay()
    _wait(
        browser,
        "the refresh to show the new depth",
        lambda d: _text(d, "other", "queue-depth") == "10",
    )
    assert int(browser.find_element(By.ID, "fastq-live").get_attribute("data-refreshes")) >= 1

    # Pause "default" from the page.
    browser.execute_script(
        "document.querySelector(arguments[0]).click();",
        'tr[data-queue="default"] button[name=action][value=pause]',
    )
    _wait(browser, "the paused state", lambda d: _text(d, "default", "queue-state") == "paused")
    assert Queue.objects.get(name="default").paused
    assert Queue.objects.get(name="default").changed_by == "operator"
    assert "paused" in browser.find_element(By.CSS_SELECTOR, "ul.messagelist").text
    _shot(browser, "dashboard-paused")

    # The task page of the failing task.
    browser.get(live_server.url + f"/admin/fastq_django/dashboard/task/{tasks.fail.name}/")
    _wait(browser, "the task page", lambda d: d.find_elements(By.ID, "task-failure-rate"))
    assert browser.find_element(By.ID, "task-failed").text == "3"
    assert "browser failure" in browser.find_element(By.ID, "fastq-task-jobs").text
    _shot(browser, "task")

    assert w.proc.poll() is None, w.output()
    w.signal(signal.SIGTERM)
    code, out = w.wait(60)
    assert code == 0, out
    assert [r.id for r in waiting]  # still queued: "other" stayed paused throughout
    assert set(Job.objects.filter(queue="other").values_list("state", flat=True)) == {"queued"}
