"""The CLI's static JSON is a public interface: three models' output, captured before the layout moved (issue 13),
must come back key for key and number for number. Only ``timings_s`` (how long counting took) may differ.

After a deliberate change to a figure or a key, regenerate the golden file and say why in the commit:
``efficiency profile bert-base-uncased gpt2 resnet-50 --json``, each entry without ``timings_s``.
"""

from __future__ import annotations

import json
from pathlib import Path

from efficiency.cli.main import main

GOLDEN = Path(__file__).parent / "data" / "cli_static_golden.json"
VARIABLE_KEYS = {"timings_s"}


def test_static_profile_json_matches_the_golden_output(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    expected = json.loads(GOLDEN.read_text())
    status = main(["profile", "bert-base-uncased", "gpt2", "resnet-50", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert status == 0
    assert [row["model"] for row in rows] == [row["model"] for row in expected]
    for row, golden in zip(rows, expected, strict=True):
        assert VARIABLE_KEYS <= set(row), row["model"]
        got = {key: value for key, value in row.items() if key not in VARIABLE_KEYS}
        assert sorted(got) == sorted(golden), row["model"]
        for key in golden:
            assert got[key] == golden[key], f"{row['model']}: {key}"
