"""Screenshots of every page at 1280x800, to look at the dashboard as a user would before calling UI work done.

Starts the dashboard on a free loopback port over a temporary data folder holding the static profiles of a few
catalog models, opens each page in headless Chromium (and each chart tab of Compare), and saves full-page PNGs.

Run: .venv/bin/python scripts/screenshots.py [--out DIR]   (needs /usr/bin/chromium and playwright)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.compare_page_load import STORED, fill_store, with_server  # noqa: E402
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, settled  # noqa: E402

PAGE_READY = {"results": "[data-testid='stDataFrame']", "experiments": "[data-testid='stMainBlockContainer'] p"}
PAGES = {
    "home": "",
    "results": "Results",
    "experiments": "Experiments",
    "story": "Story",
    "hardware": "Hardware",
}


def shoot(page, url: str | None, path: Path, wait_for: str = "[data-testid='stMainBlockContainer'] p") -> None:
    """The first screen at 1280x800, then the whole page (Streamlit scrolls inside the app, so the viewport
    is made as tall as the content for that second shot). ``url`` None: the page as it is now."""
    page.set_viewport_size(VIEWPORT)
    if url is not None:
        page.goto(url)
    page.wait_for_selector(wait_for, timeout=60_000)
    settled(page)
    page.wait_for_timeout(500)  # charts finish their transition
    page.screenshot(path=str(path))
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], int(height))})
    page.wait_for_timeout(500)
    page.screenshot(path=str(path.with_name(path.stem + "_full.png")))
    errors = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').count()
    print(f"{path.name}: {'ERRORS SHOWN: ' + str(errors) if errors else 'no error box'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    from efficiency.ui.views import TABLE_TAB, TABS

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        data = Path(tmp)
        fill_store(data)
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)

        def visit(base: str) -> None:
            for name, path in PAGES.items():
                shoot(page, f"{base}/{path}", args.out / f"{name}.png", PAGE_READY.get(name, ".js-plotly-plot"))
            query = urlencode([("models", m) for m in STORED] + [("run", "static")])
            for index, tab in enumerate(TABS):
                url = f"{base}/Compare?{query}&{urlencode({'chart': tab})}"
                ready = '[data-testid="stDataFrame"]' if tab == TABLE_TAB else ".js-plotly-plot"
                shoot(page, url, args.out / f"compare_{index}.png", ready)
            page.goto(f"{base}/Compare?{query}")  # the same link with its pickers unfolded
            page.get_by_text("Change the models, workload or hardware").click()
            shoot(page, None, args.out / "compare_pickers.png", '[data-testid="stMultiSelect"]')

        with_server(data, visit)
        browser.close()
    print(f"screenshots in {args.out}")


if __name__ == "__main__":
    main()
