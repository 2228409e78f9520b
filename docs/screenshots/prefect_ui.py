"""Screenshots of the Prefect UI for the README: one acquisition's runs, a timepoint's tables, the diagnostics shown in the UI.

Run against a Prefect server that has recorded a live run (see docs/screenshots/README.md):

    python docs/screenshots/prefect_ui.py --api http://127.0.0.1:4200 --acquisition larva --output docs/images

Needs Playwright (``pip install playwright``) and a Chromium (``/usr/bin/chromium`` from Debian by default); neither is a
dependency of isoview.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]


def _post(api: str, route: str, body: dict) -> list[dict]:
    request = urllib.request.Request(f"{api}/api/{route}", data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def _latest_run(api: str, tag: str, name_prefix: str) -> dict:
    runs = _post(api, "flow_runs/filter", {"flow_runs": {"tags": {"all_": [tag]}}, "sort": "START_TIME_DESC", "limit": 200})
    return next(run for run in runs if run["name"].startswith(name_prefix))


def _latest_artifact(api: str, key: str) -> dict:
    return _post(api, "artifacts/filter", {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 1})[0]


def _shoot(page: Page, url: str, path: Path, *, wait_s: float = 4.0, full_page: bool = False) -> None:
    page.goto(url)
    time.sleep(wait_s)
    page.screenshot(path=str(path), full_page=full_page)
    print(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", default="http://127.0.0.1:4200", help="The Prefect server (UI and API).")
    parser.add_argument("--acquisition", required=True, help="The acquisition's folder name (its runs are tagged acquisition:<name>).")
    parser.add_argument("--timepoint", type=int, default=3, help="The timepoint whose correction tables are shown.")
    parser.add_argument("--output", type=Path, default=Path("docs/images"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    arguments = parser.parse_args()
    arguments.output.mkdir(parents=True, exist_ok=True)
    tag = f"acquisition:{arguments.acquisition}"
    correction = _latest_run(arguments.api, tag, f"correct SPM00 TM{arguments.timepoint:06d}")
    table = _latest_artifact(arguments.api, f"correction-spm00-tm{arguments.timepoint:06d}")
    diagnostics = _latest_artifact(arguments.api, "fusion-diagnostics-spm00")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=arguments.chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        _shoot(page, f"{arguments.api}/runs?tag={tag}", arguments.output / "prefect-runs-of-one-acquisition.png")
        _shoot(page, f"{arguments.api}/runs/flow-run/{correction['id']}", arguments.output / "prefect-timepoint-run.png")
        _shoot(page, f"{arguments.api}/artifacts/artifact/{table['id']}", arguments.output / "prefect-timepoint-table.png")
        _shoot(page, f"{arguments.api}/artifacts/artifact/{diagnostics['id']}", arguments.output / "prefect-diagnostics.png", full_page=True)
        alerts = _post(arguments.api, "artifacts/filter", {"artifacts": {"key": {"any_": ["isoview-alerts"]}}, "sort": "CREATED_DESC", "limit": 1})
        if alerts:
            _shoot(page, f"{arguments.api}/artifacts/artifact/{alerts[0]['id']}", arguments.output / "prefect-alerts.png")
        browser.close()


if __name__ == "__main__":
    main()
