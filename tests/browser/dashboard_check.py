"""The dashboard as a user sees it: `mlflow ui` serving a store, the experiment's runs page in headless
Chromium, the sweep's parent row expanded, and the parent and its children read off the rendered page.

    .venv/bin/python -m tests.browser.dashboard_check            # the demo's ./mlflow.db, sweep e-sweep-tiny
    .venv/bin/python -m tests.browser.dashboard_check --store sqlite:///$PWD/mlflow.db --sweep NAME

Exit code 0 when every run name is on the page; a screenshot is written next to the store (or --screenshot).
Needs Debian's `chromium` (/usr/bin/chromium) and the `playwright` package (it drives that Chromium; no
browser download).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient

from tests.helpers import mlflow_server
from workflows.runtime.tracking_store import runs_page_url
from workflows.tracking import find_children

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The flags this closed machine needs: no sandbox as root, and no background calls to the internet.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def browser_missing() -> str | None:
    """Why the check cannot run here, or None."""
    if not Path(CHROMIUM).is_file():
        return "Chromium is not installed (apt-get install chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


def visible_runs(url: str, parent: str, names: list[str], screenshot: Path) -> set[str]:
    """Opens `url`, expands the row of run `parent`, and returns which of `names` the page shows."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 900})
            page.goto(url)
            row = page.locator(".ag-row", has_text=parent).first
            row.wait_for(timeout=60_000)
            row.locator("button").first.click()  # the tree toggle in the run-name cell
            for name in names:
                try:
                    page.get_by_text(name, exact=True).first.wait_for(timeout=15_000)
                except Exception:  # noqa: BLE001 - reported as missing below
                    break
            page.screenshot(path=str(screenshot))
            text = page.inner_text("body")
        finally:
            browser.close()
    return {name for name in names if name in text}


def check_dashboard(store: str, experiment: str, sweep: str, screenshot: Path) -> tuple[set[str], set[str]]:
    """(expected run names, names seen on the runs page) for the sweep's latest parent run."""
    client = MlflowClient(store)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise LookupError(f"{store}: no experiment '{experiment}'")
    parents = client.search_runs([found.experiment_id], f"tags.sweep = '{sweep}' and tags.role = 'sweep'",
                                 order_by=["attributes.start_time DESC"])
    if not parents:
        raise LookupError(f"{store}: no parent run of sweep '{sweep}'")
    children = sorted(find_children(client, found.experiment_id, parents[0].info.run_id))
    expected = {sweep, *children}
    with tempfile.TemporaryDirectory() as folder, mlflow_server(Path(folder), store=store) as server:
        url = runs_page_url(server, found.experiment_id)
        return expected, visible_runs(url, sweep, sorted(expected), screenshot)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", default=f"sqlite:///{Path.cwd() / 'mlflow.db'}")
    parser.add_argument("--experiment", default="vitok-scaling")
    parser.add_argument("--sweep", default="e-sweep-tiny")
    parser.add_argument("--screenshot", default="work/dashboard.png")
    args = parser.parse_args(argv)
    missing = browser_missing()
    if missing:
        print(f"dashboard check: cannot run: {missing}", file=sys.stderr)
        return 2
    Path(args.screenshot).parent.mkdir(parents=True, exist_ok=True)
    expected, seen = check_dashboard(args.store, args.experiment, args.sweep, Path(args.screenshot))
    print(f"runs page shows {len(seen)} of {len(expected)} runs; screenshot: {args.screenshot}")
    if expected - seen:
        print(f"missing: {', '.join(sorted(expected - seen))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
