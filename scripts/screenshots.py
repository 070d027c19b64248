"""Screenshots of every page at 1280x800, to look at the dashboard as a user would before calling UI work done.

Starts the dashboard on a free loopback port over a temporary data folder holding the static profiles of a few
catalog models (by default the five of issue 18: BERT-base, ALBERT-xxlarge, GPT-2, ViT-B/16, ResNet-50, whose
indicators span more than 10x), opens each page in headless Chromium (and each chart tab of Compare), and saves
PNGs of the first screen and of the whole page. For each shot it prints where the first chart starts and how tall
the empty band above the page's title is, in CSS px of the 1280x800 first screen.

With ``--only experiments`` it shoots the Experiments page once per experiment (bundled results), with the
numbers table unfolded in the whole-page shot.

Run: .venv/bin/python scripts/screenshots.py [--out DIR] [--only compare|experiments] [--models ID ...]
(needs /usr/bin/chromium and playwright)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.compare_page_load import with_server  # noqa: E402
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, settled  # noqa: E402

FIVE_MODELS = [
    "bert-base-uncased",
    "albert-xxlarge-v2",
    "gpt2",
    "google/vit-base-patch16-224",
    "microsoft/resnet-50",
]
PAGE_READY = {"results": "[data-testid='stDataFrame']", "experiments": "[data-testid='stMainBlockContainer'] p"}
PAGES = {
    "home": "",
    "results": "Results",
    "experiments": "Experiments",
    "story": "Story",
    "hardware": "Hardware",
}
# Where things sit on the first screen: the top of the first chart, and the title's top (the band above it).
LAYOUT_JS = """() => {
  const chart = document.querySelector('.js-plotly-plot');
  const title = document.querySelector('[data-testid="stMainBlockContainer"] h1');
  return {chart_top_px: chart ? Math.round(chart.getBoundingClientRect().top) : null,
          title_top_px: title ? Math.round(title.getBoundingClientRect().top) : null};
}"""


def fill_store(data_dir: Path, models: list[str]) -> None:
    """Static profiles stored exactly as the Compare page stores them."""
    os.environ["EFFICIENCY_DATA_DIR"] = str(data_dir)
    from efficiency.counters.static import profile_static
    from efficiency.store.store import ResultStore
    from efficiency.ui.common import save_static

    store = ResultStore()
    for model in models:
        problem = save_static(store, profile_static(model).to_result())
        if problem:
            raise RuntimeError(f"{model}: {problem}")
    store.close()


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
    layout = page.evaluate(LAYOUT_JS)
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], int(height))})
    page.wait_for_timeout(500)
    page.screenshot(path=str(path.with_name(path.stem + "_full.png")))
    errors = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').count()
    where = f"first chart at {layout['chart_top_px']} px, title at {layout['title_top_px']} px"
    print(f"{path.name}: {where}; {'ERRORS SHOWN: ' + str(errors) if errors else 'no error box'}")


def shoot_experiments(page, base: str, out: Path) -> None:
    """Each experiment's page from its bundled results; the numbers expander open for the whole-page shot."""
    from efficiency.experiments import EXPERIMENTS

    for name in EXPERIMENTS:
        page.set_viewport_size(VIEWPORT)
        page.goto(f"{base}/Experiments?{urlencode({'experiment': name})}")
        page.wait_for_selector(".js-plotly-plot", timeout=60_000)
        page.get_by_text("Numbers, and where each column comes from").click()
        shoot(page, None, out / f"experiment_{name}.png", "[data-testid='stDataFrame']")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "screenshots")
    parser.add_argument("--only", choices=["compare", "experiments"], help="only that page's shots")
    parser.add_argument("--models", nargs="+", default=FIVE_MODELS, help="catalog ids stored and compared")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    from efficiency.ui.views import TABLE_TAB, TABS

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        data = Path(tmp)
        fill_store(data, args.models)
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)

        def visit(base: str) -> None:
            if args.only == "experiments":
                shoot_experiments(page, base, args.out)
                return
            for name, path in {} if args.only else PAGES.items():
                shoot(page, f"{base}/{path}", args.out / f"{name}.png", PAGE_READY.get(name, ".js-plotly-plot"))
            query = urlencode([("models", m) for m in args.models] + [("run", "static")])
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
