"""The dashboard in a real browser: `streamlit run app.py` on a free loopback port, driven by Debian's Chromium.

Skipped when /usr/bin/chromium or the playwright package is missing (`.ci/run` installs chromium first).
A screenshot of the page is saved under artifacts/ (gitignored) whatever the outcome.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.streamlit_server import ROOT, serving, settled

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1280, "height": 800}

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)", allow_module_level=True)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with serving(tmp_path / "data", tmp_path / "streamlit.log") as url:
        yield url


def test_static_comparison_renders_charts_without_errors(server: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        try:
            page.goto(f"{server}/Compare?models=electra-small-discriminator&models=gpt2&run=static")
            page.get_by_role("button", name="Run", exact=True).click(timeout=30_000)
            page.wait_for_selector("text=Counted 2 model(s)", timeout=45_000)
            page.wait_for_selector(".js-plotly-plot", timeout=30_000)
            settled(page)
            assert page.locator(".js-plotly-plot").count() == 1, "one chart tab open, one chart drawn"
            assert page.locator(".js-plotly-plot .gtitle").first.text_content() == "Rank under each cost indicator"
            page.get_by_role("tab", name="All indicators").click()
            page.wait_for_selector("text=Every cost indicator, one axis each", timeout=30_000)
            settled(page)
            assert page.locator('[data-testid="stException"]').count() == 0
            assert page.locator('[data-testid="stAlertContentError"]').count() == 0
            assert "models=gpt2" in page.url and "chart=All" in page.url, "the view's state is in the URL"
            title = page.locator(".js-plotly-plot .gtitle").first.text_content()
            assert title == "Every cost indicator, one axis each"
            page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "browser_compare_chart.png"))
            with page.expect_download(timeout=30_000) as download:
                page.get_by_role("button", name="Export charts as HTML").click()
            exported = Path(download.value.path()).read_text(encoding="utf-8")
            assert title in exported and "Rank under each cost indicator" in exported
            assert "weights random" in exported and "ELECTRA-small discriminator" in exported
            page.get_by_role("tab", name="Table").click()
            page.wait_for_selector("text=counted (static)", state="attached", timeout=30_000)  # the run's table
            settled(page)
            assert page.locator(".js-plotly-plot").count() == 0, "the Table tab shows the table, not a chart"
            link = page.url
            again = browser.new_page(viewport=VIEWPORT)  # the link, now that the results are stored
            again.goto(link)
            again.wait_for_selector('[data-testid="stDataFrame"]', timeout=45_000)
            settled(again)
            assert again.get_by_role("button", name="Run", exact=True).count() == 0, "pickers folded"
            again.get_by_text("Change the models, workload or hardware").click()
            again.get_by_role("button", name="Run", exact=True).wait_for(timeout=30_000)
            again.close()
        finally:
            page.evaluate("() => document.querySelectorAll('*').forEach(e => e.scrollTop = 0)")
            page.screenshot(path=str(ARTIFACTS / "browser_compare.png"))
            browser.close()


def test_a_deep_link_as_the_first_request_gets_the_app_layout(server: str) -> None:
    """A talk starts from /Story?step=N on a server just started: top navigation, no sidebar of file names."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        try:
            page.goto(f"{server}/Story?step=2")
            page.wait_for_selector("text=Step 2 of", timeout=45_000)
            settled(page)
            assert page.locator('[data-testid="stSidebar"]').count() == 0
            assert page.locator('[data-testid="stTopNavLink"]').count() >= 5, "the app's top navigation"
            assert "step=2" in page.url
        finally:
            page.screenshot(path=str(ARTIFACTS / "browser_story_deep_link.png"))
            browser.close()


def test_a_config_uploaded_in_the_browser_is_profiled(server: str, tmp_path: Path) -> None:
    """A visitor's own config.json, uploaded on Compare: it joins the models by its contents and is counted."""
    config = tmp_path / "my-tiny-bert.json"
    config.write_text(
        '{"model_type": "bert", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, '
        '"intermediate_size": 128, "vocab_size": 1000, "max_position_embeddings": 256}'
    )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        try:
            page.goto(f"{server}/Compare?models=electra-small-discriminator&run=static")
            page.locator("input[type=file]").set_input_files(str(config), timeout=45_000)
            page.wait_for_function(
                "() => [...document.querySelectorAll('input')].some(i => i.value.startsWith('local:'))",
                timeout=45_000,
            )
            settled(page)
            page.get_by_role("button", name="Run", exact=True).click(timeout=30_000)
            page.wait_for_selector("text=Counted 2 model(s)", timeout=90_000)
            settled(page)
            assert page.locator('[data-testid="stException"]').count() == 0
            assert page.locator('[data-testid="stAlertContentError"]').count() == 0
            assert "local%3A" in page.url or "local:" in page.url, "the link names the upload by its contents"
        finally:
            page.screenshot(path=str(ARTIFACTS / "browser_compare_upload.png"))
            browser.close()
