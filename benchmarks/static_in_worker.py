"""What moving the pages' static counts into a worker costs, and what it buys (issue 19, item 5).

Part 1, cost (``--part cost``): the time of a static count of bert-base-uncased, gpt2 and resnet-50 at the
default workload, in the server's process (``profile_static``, as the pages counted before) and through the
worker (``efficiency.ui.runs.count_in_worker``: resolve here, count in a fork of the runner's forkserver, under
its timeout and memory cap), with the forkserver cold (a fresh process: the first Run after a server start,
the forkserver importing torch and transformers meanwhile) and warm (median of 3); the ratio column is worker
over in-process. "server RSS +" is how much the counting process's peak resident memory grew: the worker
leaves the server's where it was.

Part 2, the page during a long count (``--part page``): a real server (``streamlit run app.py`` of
``--server-root``, default this tree) and Chromium. Session A opens Compare with a local ALBERT config of
``--layers`` layers (256: ~20 s on 2 cores; the 1,024 of issue 19 took 52 s) and presses Run (static counts);
meanwhile a thread times the health endpoint every 0.25 s and session B (another browser context) opens Home
again and again. The table compares idle with during the count: the health check's latency, Home's time to its
chart, and the server process's resident memory. Run it once against a tree from before this change (counts in
the server process) to see the difference.

    python benchmarks/static_in_worker.py                 # both parts
    python benchmarks/static_in_worker.py --part page --server-root /path/to/older/tree
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("bert-base-uncased", "gpt2", "microsoft/resnet-50")
WARM_REPEATS = 3
CHROMIUM = Path("/usr/bin/chromium")
PAUSE_S = 2.0  # between two Home visits of session B: a person clicking, not a load test
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def _quiet_streamlit() -> None:
    """Outside a Streamlit server, st.cache_* warns "No runtime found" on every call: nothing to see here."""
    from streamlit import logger  # lazy: part 2 and the cold children do not need it

    logger.set_log_level("error")


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kB


# ---------------------------------------------------------------- part 1: cost


def count(mode: str, model: str) -> float:
    """Seconds for one static count of ``model`` at the default workload, in this process or through a worker."""
    from efficiency.specs import Workload

    began = time.perf_counter()
    if mode == "in-process":
        from efficiency.counters.static import profile_static  # lazy: what the pages imported before

        result = profile_static(model, Workload()).to_result()
    else:
        from efficiency.ui.runs import count_in_worker  # lazy: imports streamlit

        result = count_in_worker(model, Workload())
    seconds = time.perf_counter() - began
    if result.error:
        raise SystemExit(f"{model} ({mode}): {result.error}")
    return seconds


def cold(mode: str, model: str) -> dict[str, float]:
    """In a fresh process that has imported what a running server holds (torch, the loading code): the first
    count, its time and how much this process's peak RSS grew."""
    _quiet_streamlit()
    import efficiency.models.loading  # noqa: F401 - the server has it (device detection, name checks)
    import efficiency.ui.runs  # noqa: F401 - the page's module, as the server has it

    before = _peak_rss()
    seconds = count(mode, model)
    return {"seconds": seconds, "rss_growth": _peak_rss() - before}


def cold_in_child(mode: str, model: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--cold", mode, model], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if out.returncode:
        raise SystemExit(f"cold {mode} {model} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def part_cost() -> None:
    _quiet_streamlit()
    rows = []
    for model in MODELS:
        cold_in = cold_in_child("in-process", model)
        cold_worker = cold_in_child("worker", model)
        warm = {}
        for mode in ("in-process", "worker"):
            count(mode, model)  # the model's code imported, the forkserver running
            warm[mode] = statistics.median(count(mode, model) for _ in range(WARM_REPEATS))
        rows.append((model, cold_in, cold_worker, warm))
    header = (
        f"{'model':<22} {'in-process cold':>15} {'worker cold':>12} {'ratio':>6} | {'in-process warm':>15} "
        f"{'worker warm':>12} {'ratio':>6} | {'server RSS + in-process':>23} {'worker':>8}"
    )
    print(header)
    print("-" * len(header))
    for model, cold_in, cold_worker, warm in rows:
        print(
            f"{model:<22} {cold_in['seconds']:>13.2f} s {cold_worker['seconds']:>10.2f} s "
            f"{cold_worker['seconds'] / cold_in['seconds']:>5.2f}x | {warm['in-process']:>13.2f} s "
            f"{warm['worker']:>10.2f} s {warm['worker'] / warm['in-process']:>5.2f}x | "
            f"{cold_in['rss_growth'] / 2**20:>19.0f} MiB {cold_worker['rss_growth'] / 2**20:>4.0f} MiB"
        )
    print(
        f"cold: the first count in a fresh process that holds torch (worker: forkserver started by that count); "
        f"warm: median of {WARM_REPEATS}. Load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs."
    )


# ---------------------------------------------------------------- part 2: the page during a long count


def albert_folder(parent: Path, layers: int) -> Path:
    from efficiency.models import catalog

    folder = parent / f"albert-{layers}-layers"
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_type": "albert", **catalog.find("albert-base-v2").config, "num_hidden_layers": layers}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


class Sampler(threading.Thread):
    """Times the health endpoint and reads the server process's RSS, every ``interval_s``, until stopped."""

    def __init__(self, url: str, pid: int, interval_s: float = 0.25) -> None:
        super().__init__(daemon=True)
        import psutil

        self.url, self.server, self.interval_s = url, psutil.Process(pid), interval_s
        self.samples: list[tuple[float, float, int]] = []  # (time, health seconds, server RSS)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            began = time.monotonic()
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=30) as reply:
                    reply.read()
                rss = self.server.memory_info().rss
            except (OSError, psutil_errors()):  # the server is stopping: the samples so far are the answer
                return
            self.samples.append((began, time.monotonic() - began, rss))
            self.stopped.wait(self.interval_s)

    def between(self, start: float, end: float) -> tuple[list[float], list[int]]:
        chosen = [(h, r) for t, h, r in self.samples if start <= t <= end]
        return [h for h, _ in chosen], [r for _, r in chosen]


def psutil_errors() -> type[Exception]:
    import psutil

    return psutil.Error


def start_server(root: Path, data: Path, log: Path) -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "EFFICIENCY_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"}
    env.pop("EFFICIENCY_DB", None)
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    command += ["--server.address", "127.0.0.1", "--server.headless", "true"]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit(f"the server did not start; see {log}")


def home_load(browser, url: str) -> float:
    """Seconds from opening Home in a new session (a new browser context) to its chart drawn."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    began = time.monotonic()
    page.goto(url)
    page.wait_for_selector(".js-plotly-plot", timeout=120_000)
    seconds = time.monotonic() - began
    context.close()
    return seconds


def part_page(server_root: Path, layers: int) -> None:
    from playwright.sync_api import sync_playwright  # lazy: part 1 needs no browser

    work = Path(tempfile.mkdtemp(prefix="static-in-worker-"))
    folder = albert_folder(work, layers)
    process, url = start_server(server_root, work / "data", work / "streamlit.log")
    sampler = Sampler(url, process.pid)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            home_load(browser, url)  # the server imports the pages' modules once
            session_a = browser.new_page(viewport={"width": 1280, "height": 800})
            session_a.goto(f"{url}/Compare?models=&extra={folder}&run=static&seq=128")
            run = session_a.get_by_role("button", name="Run", exact=True)
            run.wait_for(timeout=60_000)
            time.sleep(8)  # past the engine's delayed warm-up (5 s), so idle is idle
            sampler.start()
            idle_began = time.monotonic()
            idle_loads = []
            for _ in range(3):
                idle_loads.append(home_load(browser, url))
                time.sleep(PAUSE_S)
            idle_ended = time.monotonic()
            run.click()
            began = time.monotonic()
            busy_loads = []
            while session_a.get_by_text("Counted 1 model").count() == 0:
                if session_a.get_by_text("failed (see below)").count():
                    raise SystemExit("the count failed on the page; see the screenshot in " + str(work))
                if time.monotonic() - began > 600:
                    raise SystemExit("the count did not end within 600 s")
                busy_loads.append(home_load(browser, url))
                time.sleep(PAUSE_S)
            ended = time.monotonic()
            counted = session_a.get_by_text("Counted 1 model").first.text_content()
            browser.close()
    finally:
        sampler.stopped.set()
        process.terminate()
        process.wait(timeout=30)
    idle_health, idle_rss = sampler.between(idle_began, idle_ended)
    busy_health, busy_rss = sampler.between(began, ended)

    def row(label: str, health: list[float], loads: list[float], rss: list[int]) -> str:
        return (
            f"{label:<17} {len(health):>5} {statistics.median(health) * 1000:>7.0f} ms {max(health) * 1000:>7.0f} ms"
            f" {len(loads):>6} {statistics.median(loads):>9.1f} s {max(loads):>6.1f} s"
            f" {min(rss) / 2**30:>10.2f} GiB {max(rss) / 2**30:>5.2f} GiB"
        )

    print(f"server: {server_root} · ALBERT with {layers} layers, counted on Compare in {ended - began:.1f} s")
    print(f"page A says: {counted}")
    print(f"{'':<17} {'health check':^26} {'session B: Home to its chart':^28} {'server process RSS':^22}")
    columns = ("pings", 5), ("median", 10), ("max", 10), ("visits", 6), ("median", 11), ("max", 8), ("min", 14)
    print(f"{'':<17}", *(f"{name:>{width}}" for name, width in columns), f"{'max':>9}")
    print(row("idle", idle_health, idle_loads, idle_rss))
    print(row("during the count", busy_health, busy_loads, busy_rss))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("cost", "page", "both"), default="both")
    parser.add_argument("--server-root", type=Path, default=ROOT, help="the tree whose app.py part 2 serves")
    parser.add_argument("--layers", type=int, default=256, help="layers of part 2's ALBERT config")
    parser.add_argument("--cold", nargs=2, metavar=("MODE", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cold:
        print(json.dumps(cold(*args.cold)))
        return
    if args.part in ("cost", "both"):
        part_cost()
    if args.part in ("page", "both"):
        part_page(args.server_root.resolve(), args.layers)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
