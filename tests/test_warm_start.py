"""Issue 18, item 6: `streamlit run app.py` serves the app through an ``st.App`` whose lifespan imports the heavy
modules before the server answers, so the first visit after a start finds them loaded. Checked on a real server:
before any visit, torch's library is mapped into the server process (and it is not with the warm-up switched
off, so the check can tell the two apart). The timing itself is ``benchmarks/compare_page_load.py --only
first-visit``."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.web.server.app_discovery import discover_asgi_app
from streamlit_server import ROOT, STARTUP_TIMEOUT_S, start_server, stop_server, wait_healthy

WARM_ENV = "EFFICIENCY_WARM_START"


def test_streamlit_run_finds_the_app_with_its_lifespan() -> None:
    found = discover_asgi_app(ROOT / "app.py")
    assert found.is_asgi_app and found.import_string == "app:app"


def loaded_libraries(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text(encoding="utf-8", errors="replace")


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/<pid>/maps (Linux)")
@pytest.mark.parametrize("warm", [True, False], ids=["warm-up on", "warm-up off"])
def test_a_started_server_has_torch_loaded_before_any_visit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warm: bool
) -> None:
    monkeypatch.setenv(WARM_ENV, "1" if warm else "0")
    process, url = start_server(tmp_path, tmp_path / "streamlit.log")
    try:
        wait_healthy(url, process, STARTUP_TIMEOUT_S)
        maps = loaded_libraries(process.pid)
        log = (tmp_path / "streamlit.log").read_text(encoding="utf-8", errors="replace")
    finally:
        stop_server(process)
    assert ("libtorch_cpu" in maps) is warm, log
    assert ("Warmed" in log) is warm, log
    assert ("objects they made are kept out of garbage collection" in log) is warm, log  # frozen after the imports
    assert "Traceback" not in log, log
