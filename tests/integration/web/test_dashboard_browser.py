"""The dashboard end to end in a real headless Chromium (Debian's ``chromium``, driven by
Playwright; no browser is downloaded): a real server with traffic, drifted windows, alerts,
labels and API keys (``API_KEYS``). The page loads without a key and without script errors,
shows the three models, draws the histograms; alerts are acknowledged and resolved by clicks;
the server's 401 or 403 brings up the key form, and the action is sent again with the key."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, expect, sync_playwright

from helpers import (
    WAIT_SECONDS,
    eventually,
    free_port,
    sample_records,
    skip_or_fail,
    stop_process_group,
)
from mlobs.data import DATASETS, DriftSpec, generate

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
MODELS = ("fraud", "price", "churn")
# Every expect() and page action waits this long for what it expects (the page refreshes every
# 5 s): a bound for hangs, not a speed check.
WAIT_MS = WAIT_SECONDS * 1000
ADMIN_KEY, FEEDBACK_KEY = "dash-admin-key-1", "dash-feedback-key-1"


@dataclass
class Served:
    url: str
    alerts: dict[str, str]  # model -> id of its open drift alert


def _rows(
    name: str, n: int, seed: int, intensity: float = 0.0
) -> tuple[list[dict[str, Any]], list[Any]]:
    drift = DriftSpec.preset(name, intensity) if intensity else None
    df = generate(name, n, seed=seed, drift=drift)
    spec = DATASETS[name]
    records = [
        {str(k): (None if pd.isna(v) else v) for k, v in r.items()}
        for r in df[spec.feature_names].to_dict("records")
    ]
    return records, df[spec.target].tolist()


def _wait_for(what: str, check: Callable[[], Any], proc: subprocess.Popen[bytes], log: Path) -> Any:
    def running_check() -> Any:
        if proc.poll() is not None:
            raise AssertionError(f"server exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        return check()

    return eventually(
        running_check,
        interval=0.2,
        ignore=(httpx.HTTPError,),
        message=lambda: f"{what} never came:\n{log.read_text()[-4000:]}",
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[Served]:
    """`mlobs serve` with API keys and small drift windows, fed traffic (drifted for fraud and
    churn, so each opens a drift alert) and labels (so realized performance shows)."""
    tmp = tmp_path_factory.mktemp("dashboard")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        MODEL_DIR=str(model_dir), DATA_DIR=str(tmp / "data"),
        DATABASE_URL=f"sqlite:///{tmp / 'mlobs.db'}", LOG_LEVEL="WARNING",
        LOG_FLUSH_INTERVAL="0.1", DRIFT_WINDOW_SIZE="200", DRIFT_MIN_SAMPLES="100",
        DRIFT_FLUSH_INTERVAL="0.2", PERFORMANCE_MIN_LABELS="20", PERFORMANCE_WINDOW_SIZE="50",
        PERFORMANCE_ESTIMATE_INTERVAL="1", API_KEYS=f"{ADMIN_KEY}:admin,{FEEDBACK_KEY}:feedback",
    )  # fmt: skip
    log = tmp / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlobs", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            _wait_for("readiness", lambda: http.get("/health/ready").status_code == 200,
                      proc, log)  # fmt: skip
            for name in ("fraud", "churn"):  # drifted: each closes a window and opens an alert
                records, targets = _rows(name, 220, seed=31, intensity=0.8)
                r = http.post("/predict/batch", json={"model_name": name, "records": records})
                assert r.status_code == 200, r.text
                ids = [p["prediction_id"] for p in r.json()["predictions"]]
                items = [
                    {"prediction_id": i, "actual": int(a)}
                    for i, a in zip(ids, targets, strict=True)
                ]
                r = http.post("/feedback/batch", json={"items": items[:60]},
                              headers={"X-API-Key": FEEDBACK_KEY})  # fmt: skip
                assert r.status_code == 200, r.text
            for name in MODELS:  # single predictions, timed for the latency figures
                for rec in sample_records(name, 15, seed=32):
                    assert http.post(f"/predict/{name}", json=rec).status_code == 200

            def drift_alerts() -> dict[str, str] | None:
                alerts = http.get("/monitoring/alerts", params={"status": "active"}).json()
                found = {a["model_name"]: a["id"] for a in alerts["alerts"]
                         if a["alert_type"].startswith("drift")}  # fmt: skip
                return found if {"fraud", "churn"} <= set(found) else None

            alerts = _wait_for("drift alerts", drift_alerts, proc, log)
            _wait_for("realized performance",
                      lambda: http.get("/monitoring/performance/fraud").json()["realized"],
                      proc, log)  # fmt: skip
        yield Served(url, alerts)
    finally:
        stop_process_group(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        expect.set_options(timeout=WAIT_MS)  # instead of 5 s
        try:
            yield b
        finally:
            expect.set_options(timeout=None)  # Playwright's default again
            b.close()


@dataclass
class Watched:
    page: Page
    errors: list[str]
    foreign: list[str]  # requests to anywhere but the server
    posts: list[tuple[str, str | None]]  # (path, X-API-Key) of each POST

    def problems(self, allowed: tuple[str, ...] = ()) -> list[str]:
        return [e for e in self.errors if not any(a in e for a in allowed)]


@pytest.fixture
def watched(browser: Browser, served: Served) -> Iterator[Watched]:
    """A fresh page (its own session storage: no key) recording script errors, requests to
    other origins and the key sent with each action."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    context.set_default_timeout(WAIT_MS)  # clicks, fills, navigations
    page = context.new_page()
    w = Watched(page, [], [], [])

    def on_console(m: ConsoleMessage) -> None:
        if m.type == "error":
            w.errors.append(f"console: {m.text}")

    def on_request(r: Request) -> None:
        if not r.url.startswith((served.url, "data:")):
            w.foreign.append(r.url)
        elif r.method == "POST":
            w.posts.append((r.url.removeprefix(served.url), r.headers.get("x-api-key")))

    page.on("console", on_console)
    page.on("pageerror", lambda e: w.errors.append(f"pageerror: {e}"))
    page.on("request", on_request)
    try:
        yield w
    finally:
        context.close()


def _status(served: Served, alert_id: str) -> str:
    with httpx.Client(base_url=served.url) as http:
        status: str = http.get(f"/monitoring/alerts/{alert_id}").json()["status"]
        return status


def test_the_page_shows_models_histograms_history_quality_and_performance(
    served: Served, watched: Watched, tmp_path: Path
) -> None:
    page = watched.page
    page.goto(served.url + "/")  # no key: the page and every read are open
    expect(page).to_have_title("mlobs: models, drift and alerts")
    expect(page.locator("#models .card")).to_have_count(3)
    for name in MODELS:
        card = page.locator(f'.card[data-model="{name}"]')
        expect(card.get_by_role("heading", name=name)).to_be_visible()
        expect(card).to_contain_text("Version")
    expect(page.locator('.card[data-model="fraud"]')).to_contain_text("235 (0 errors)")
    expect(page.locator('.card[data-model="price"]')).to_contain_text("ms /")  # latency
    expect(page.locator("#service-status")).to_contain_text("healthy")
    expect(page.locator("#service-status")).not_to_contain_text("null")
    # The catalogue lists its models by name: the first shown is churn; pick fraud.
    expect(page.locator(".card.selected")).to_have_attribute("data-model", sorted(MODELS)[0])
    page.get_by_role("group", name="Choose a model").get_by_role("button", name="fraud").click()
    # Histograms of fraud: one figure per feature and one for the output, each an SVG with a
    # reference and a current bar per bin.
    figures = page.locator("#histograms figure")
    expect(figures).to_have_count(len(DATASETS["fraud"].feature_names) + 1)
    bars = page.evaluate(
        """() => [...document.querySelectorAll('#histograms figure')].map(f => [
            f.dataset.feature, f.querySelectorAll('svg rect.bar.ref').length,
            f.querySelectorAll('svg rect.bar.cur').length])"""
    )
    for feature, ref, cur in bars:
        assert ref >= 2 and cur == ref, (feature, ref, cur)
    expect(page.locator('#histograms figure[data-feature="amount"]')).to_contain_text("psi")
    expect(page.locator("#drift-summary")).to_contain_text("closed window")
    expect(page.locator("#drift-history svg circle")).not_to_have_count(0)
    n_features = len(DATASETS["fraud"].feature_names)
    expect(page.locator("#quality table tbody tr")).to_have_count(n_features)
    expect(page.locator("#performance table")).to_contain_text("roc_auc")
    columns = page.evaluate(
        """() => [...document.querySelectorAll('#performance tbody tr')].map(
            r => [r.cells[2].textContent, r.cells[3].textContent])"""
    )
    assert any(realized != "–" for realized, _ in columns), columns
    assert any(estimated != "–" for _, estimated in columns), columns
    expect(page.locator("#alerts tbody tr")).not_to_have_count(0)
    # Another model's details on a click.
    picker = page.get_by_role("group", name="Choose a model")
    picker.get_by_role("button", name="price").click()
    expect(figures).to_have_count(len(DATASETS["price"].feature_names) + 1)
    picker.get_by_role("button", name="fraud").click()
    expect(figures).to_have_count(n_features + 1)
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("MLOBS_ARTIFACTS_DIR"):  # CI may keep it as an artifact
        dest = Path(os.environ["MLOBS_ARTIFACTS_DIR"])
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, dest / "dashboard.png")
    print(f"dashboard screenshot: {shot}")
    text = page.locator("body").inner_text()
    assert not any(bad in text for bad in ("undefined", "NaN", "[object")), text
    assert watched.problems() == [] and watched.foreign == [] and watched.posts == []


def test_an_alert_is_acknowledged_then_resolved_by_clicks(served: Served, watched: Watched) -> None:
    page = watched.page
    # An operator who gave the key earlier in this tab.
    page.goto(served.url + "/")
    page.evaluate(f"sessionStorage.setItem('mlobs.apiKey', '{ADMIN_KEY}')")
    page.reload()
    page.get_by_label("Acting as").fill("ann <b>on call</b>")
    alert_id = served.alerts["fraud"]
    row = page.locator(f'#alerts tr[data-alert-id="{alert_id}"]')
    expect(row.locator("td.status")).to_have_text("active")
    row.get_by_role("button", name="Acknowledge").click()
    expect(row.locator("td.status")).to_have_text("acknowledged")
    expect(row.get_by_role("button", name="Acknowledge")).to_have_count(0)
    expect(row).to_contain_text("ann <b>on call</b>")  # shown as text, never as markup
    expect(row.locator("b")).to_have_count(0)
    assert _status(served, alert_id) == "acknowledged"
    # Still so after the page's next refresh. Each refresh ends by writing the time into
    # #refreshed: cleared and written again twice, the second write is by a refresh that began
    # after the acknowledgement was stored.
    for _ in range(2):
        page.evaluate("document.getElementById('refreshed').textContent = ''")
        expect(page.locator("#refreshed")).to_have_text(re.compile(r"\d"))
    expect(row.locator("td.status")).to_have_text("acknowledged")
    page.get_by_label("Show resolved").check()
    row.get_by_role("button", name="Resolve").click()
    expect(row.locator("td.status")).to_have_text("resolved")
    assert _status(served, alert_id) == "resolved"
    assert watched.posts == [
        (f"/monitoring/alerts/{alert_id}/acknowledge", ADMIN_KEY),
        (f"/monitoring/alerts/{alert_id}/resolve", ADMIN_KEY),
    ]
    assert watched.problems() == [] and watched.foreign == []


def test_a_401_then_a_403_ask_for_a_key_and_the_action_is_sent_again_with_it(
    served: Served, watched: Watched
) -> None:
    page = watched.page
    alert_id = served.alerts["churn"]
    page.goto(served.url + "/")
    row = page.locator(f'#alerts tr[data-alert-id="{alert_id}"]')
    expect(row.locator("td.status")).to_have_text("active")
    row.get_by_role("button", name="Acknowledge").click()
    dialog = page.get_by_role("dialog", name="API key needed")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("401")  # no key sent
    dialog.get_by_label("API key").fill(FEEDBACK_KEY)
    dialog.get_by_role("button", name="Use key").click()
    expect(dialog).to_contain_text("403")  # a valid key, without the admin scope
    expect(dialog.get_by_label("API key")).to_have_value("")
    dialog.get_by_label("API key").fill(ADMIN_KEY)
    dialog.get_by_label("API key").press("Enter")
    expect(row.locator("td.status")).to_have_text("acknowledged")
    expect(dialog).to_be_hidden()
    path = f"/monitoring/alerts/{alert_id}/acknowledge"
    assert watched.posts == [(path, None), (path, FEEDBACK_KEY), (path, ADMIN_KEY)]
    assert _status(served, alert_id) == "acknowledged"
    assert page.evaluate("sessionStorage.getItem('mlobs.apiKey')") == ADMIN_KEY
    forget = page.get_by_role("button", name="Forget API key")
    expect(forget).to_be_visible()
    forget.click()
    expect(forget).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('mlobs.apiKey')") is None
    # Chromium logs the refused requests itself; nothing else may go wrong.
    assert watched.problems(allowed=("status of 401", "status of 403")) == []
    assert watched.foreign == []


def test_cancelling_the_key_form_leaves_the_alert_as_it_was(
    served: Served, watched: Watched
) -> None:
    page = watched.page
    alert_id = served.alerts["churn"]
    page.goto(served.url + "/")
    page.get_by_label("Show resolved").check()
    row = page.locator(f'#alerts tr[data-alert-id="{alert_id}"]')
    expect(row.locator("td.status")).not_to_have_text("resolved")
    before = row.locator("td.status").inner_text()
    row.get_by_role("button", name="Resolve").click()
    dialog = page.get_by_role("dialog", name="API key needed")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#alert-message")).to_contain_text("no API key given")
    expect(row.locator("td.status")).to_have_text(before)
    expect(row.get_by_role("button", name="Resolve")).to_be_enabled()
    assert _status(served, alert_id) == before
    assert watched.posts == [(f"/monitoring/alerts/{alert_id}/resolve", None)]
    assert watched.problems(allowed=("status of 401",)) == [] and watched.foreign == []
