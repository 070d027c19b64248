"""A result's ``error`` is one line: a deliberate error's own line, or ``Type: first line`` of an unexpected error
with its traceback in a log file under the data folder that the line names (issue 19, item 6). And a job started the
way ``streamlit run app.py`` starts one never runs app.py in the workers (the "missing ScriptRunContext" warnings).
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from efficiency import validation
from efficiency.counters import static
from efficiency.run.runner import Job, LocalExecutor, Runner
from efficiency.specs import Workload
from efficiency.validation import MAX_ERROR_CHARS, error_line, is_deliberate, log_traceback

ROOT = Path(__file__).resolve().parent.parent
HERE = "test_worker_errors:"  # tests/ is on sys.path under pytest, and the forkserver inherits sys.path
TRACEBACK_AT = re.compile(r" \(traceback: (?P<path>/[^()]+\.log)\)$")
WORKLOAD = {"batch_size": 1, "seq_len": 8, "dtype": "float32", "mode": "inference"}


def _deeper(level: int) -> None:
    if level == 0:
        raise RuntimeError("allocation of 96 GiB failed\n  at frame 7 of a native stack\n  more text")
    _deeper(level - 1)


def deep_failure(job: dict[str, Any], progress: Any) -> dict[str, Any]:
    """Fails 12 calls deep with a message of three lines, as a library's error inside a job does."""
    _deeper(12)
    return {}


def huge_message(job: dict[str, Any], progress: Any) -> dict[str, Any]:
    raise KeyError("k" * 50_000)


def logged(error: str, data_dir: Path) -> str:
    """The log file the error line names (it must be one, under the data folder's logs/), as text."""
    match = TRACEBACK_AT.search(error)
    assert match, error
    path = Path(match["path"])
    assert path.is_file() and path.parent == data_dir / validation.LOG_FOLDER
    return path.read_text()


# ---------------------------------------------------------------- the rule


def test_an_unexpected_error_is_one_typed_line_naming_its_traceback_log(data_dir):
    try:
        _deeper(5)
    except RuntimeError as err:
        line = error_line(err, log_as="bert/../../etc")
    assert line.startswith("RuntimeError: allocation of 96 GiB failed (traceback: ") and "\n" not in line
    text = logged(line, data_dir)
    assert "Traceback (most recent call last)" in text and "in _deeper" in text  # repeats: "[Previous line ..."
    assert "at frame 7 of a native stack" in text  # the lines the error line leaves out are in the log
    assert Path(TRACEBACK_AT.search(line)["path"]).name.startswith("bert_.._.._etc-")  # never a path outside logs/


def test_a_deliberate_error_is_its_own_line_without_type_or_log(data_dir):
    from efficiency.models.loading import ModelLoadError

    try:
        raise ModelLoadError("gpt2: seq_len 4096 exceeds the model's maximum of 1024 positions")
    except ModelLoadError as err:
        assert is_deliberate(err)
        assert error_line(err, log_as="gpt2") == "gpt2: seq_len 4096 exceeds the model's maximum of 1024 positions"
    assert not (data_dir / validation.LOG_FOLDER).exists()


def test_an_error_line_is_cut_and_its_control_characters_escaped():
    line = error_line(ValueError("\x1b[31m" + "v" * 50_000 + "\nsecond line"))
    assert len(line) == MAX_ERROR_CHARS and line.endswith("…") and "\x1b" not in line and "\\x1b" in line
    assert error_line(RuntimeError()) == "RuntimeError" and error_line(RuntimeError("\n\n  \nlate")) == (
        "RuntimeError: late"
    )


def test_logs_are_pruned_to_the_newest_and_an_unwritable_folder_leaves_the_line_alone(data_dir, monkeypatch, tmp_path):
    monkeypatch.setattr(validation, "MAX_LOG_FILES", 3)
    paths = [log_traceback(f"job-{i}", "Traceback ...") for i in range(6)]
    kept = sorted((data_dir / validation.LOG_FOLDER).glob("*.log"))
    assert len(kept) == 3 and all(path is not None for path in paths)
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("EFFICIENCY_DATA_DIR", str(blocked))
    try:
        raise OSError("disk on fire")
    except OSError as err:
        assert error_line(err, log_as="m") == "OSError: disk on fire"


# ---------------------------------------------------------------- the worker


def test_a_worker_exception_is_one_line_naming_a_log_that_holds_its_traceback(executor: LocalExecutor, data_dir):
    deep, huge = Runner(executor).run(
        [Job("deep-model", WORKLOAD, target=HERE + "deep_failure"), Job("huge", WORKLOAD, target=HERE + "huge_message")]
    )
    assert deep.error_kind == "exception" and "\n" not in deep.error
    assert deep.error.startswith("RuntimeError: allocation of 96 GiB failed (traceback: ")
    text = logged(deep.error, data_dir)
    assert "in deep_failure" in text and "in _deeper" in text and "more text" in text
    assert "traceback" not in deep.extra  # the traceback travels in the log, never in the result
    assert "\n" not in huge.error and len(huge.error) < MAX_ERROR_CHARS + 200
    assert huge.error.startswith("KeyError: 'kkkk") and "…" in huge.error


def test_a_workload_the_model_cannot_take_is_one_line(executor: LocalExecutor, data_dir):
    """Through the runner's own target (``run_job``) in a worker, and through the static profile in-process."""
    workload = {**WORKLOAD, "image_size": 230}
    (result,) = Runner(executor).run([Job("vit-b16", workload, metrics="static")])
    assert result.error.endswith("image_size 230 is not a multiple of the patch size 16")
    assert "raise ModelLoadError" not in result.error and "traceback" not in result.extra
    profile = static.safe_profile_static("vit-b16", Workload(image_size=230))
    assert profile.error == result.error


def test_a_sequence_longer_than_the_models_maximum_runs_at_it_and_says_so(executor: LocalExecutor, data_dir):
    (result,) = Runner(executor).run(
        [Job("electra-small-discriminator", {**WORKLOAD, "seq_len": 100_000}, metrics="static")]
    )
    assert result.error is None and result.workload["seq_len"] == 512 and result.inputs == "text 512 tokens"
    assert "Text capped at the model's maximum of 512 positions (asked 100000)." in result.notes


def test_a_static_count_that_breaks_is_one_typed_line_naming_its_log(data_dir, monkeypatch):
    def broken(model: Any, workload: Any) -> Any:
        raise RuntimeError("shape mismatch in aten::mm\nwith a second line")

    monkeypatch.setattr(static, "profile_static", broken)
    error = static.safe_profile_static("gpt2", Workload()).error
    assert error.startswith("RuntimeError: shape mismatch in aten::mm (traceback: ")
    assert "with a second line" in logged(error, data_dir)


# ---------------------------------------------------------------- a host's __main__ (streamlit run app.py)

AS_STREAMLIT_RUNS_APP = """
import os, sys, types
sys.path[:0] = [{root!r}, {tests!r}]
app = os.path.join({root!r}, "app.py")
sys.argv = [app]  # streamlit run app.py sets argv[0] to app.py's absolute path ...
main = types.ModuleType("__main__")  # ... and runs it as a __main__ module of its own making (no loader)
main.__file__ = app
sys.modules["__main__"] = main
from efficiency.run.runner import Job, LocalExecutor, Runner
(result,) = Runner(LocalExecutor()).run([Job("x", target="fault_targets:ok")])
print("RESULT", result.error, result.extra.get("pid"))
"""


def test_a_job_started_under_streamlit_run_app_py_never_runs_app_py_in_its_workers(tmp_path):
    """Before: the forkserver imported app.py as its main, outside Streamlit, and logged "missing ScriptRunContext"
    warnings (11 per start) into the server's log after a measured run."""
    script = tmp_path / "host.py"
    script.write_text(textwrap.dedent(AS_STREAMLIT_RUNS_APP.format(root=str(ROOT), tests=str(ROOT / "tests"))))
    env = {"EFFICIENCY_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"^RESULT None \d+$", done.stdout, re.M), done.stdout
    assert "ScriptRunContext" not in done.stderr and "streamlit" not in done.stderr, done.stderr[-2000:]
