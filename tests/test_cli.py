"""The CLI through its entry point: JSON keys, per-model errors, exit status 2 for bad arguments."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from efficiency.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "pandas", "ray")

REQUIRED_KEYS = {
    "model",
    "params",
    "params_active",
    "flops",
    "macs",
    "flops_by_counter",
    "training_flops",
    "memory_traffic_bytes",
    "uncounted_ops",
    "workload",
    "error",
}


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_profile_json_has_the_documented_keys_and_keeps_going_after_a_failure(capsys):
    status = main(["profile", "electra-small", "no-such-model", "--seq-len", "64", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert status == 1
    assert [r["model"] for r in rows] == ["electra-small-discriminator", "no-such-model"]
    good, bad = rows
    assert REQUIRED_KEYS <= set(good)
    assert good["error"] is None
    assert isinstance(good["params"], int) and good["params"] == good["params_active"]
    assert good["flops"] == 2 * good["macs"]
    assert set(good["flops_by_counter"]) == {"torch", "fvcore", "analytic"}
    assert good["workload"]["seq_len"] == 64
    assert bad["error"].startswith("unknown model 'no-such-model'")


def test_profile_csv_has_one_row_per_model(capsys):
    assert main(["profile", "electra-small", "--seq-len", "16", "--csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("model,")


@pytest.mark.parametrize(
    "argv",
    [
        ["profile", "gpt2", "--batch-size", "0"],
        ["profile", "gpt2", "--batch-size", "-1"],
        ["profile", "gpt2", "--seq-len", "abc"],
        ["profile", "gpt2", "--dtype", "int4"],
        ["profile"],
        ["frobnicate"],
        ["profile", "gpt2", "--batch-size", str(10**9)],
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err


def test_models_json_lists_the_catalog(capsys):
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) >= 40
    assert {"id", "aliases", "families", "source"} <= set(rows[0])


def test_help_answers_at_once_without_importing_heavy_libraries():
    """Engine modules that import torch, transformers, pandas or ray are imported inside the commands
    (``# lazy:``), so ``--help`` and bad arguments answer in a fraction of a second."""
    code = (
        "import sys; from efficiency.cli.main import main; "
        "statuses = [main(['--help']), main(['profile', '--help']), main(['frobnicate'])]; "
        f"heavy = [name for name in {HEAVY!r} if name in sys.modules]; "
        "assert statuses == [0, 0, 2], statuses; assert not heavy, heavy"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=120, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
