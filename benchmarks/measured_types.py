"""``--metrics all`` on architectures outside the catalog: each type built from transformers' own default config
(depth cut to 2 layers, as in ``architecture_coverage.py``), saved as a folder and profiled through the CLI as a
user would (static counts, then measured here in the isolated worker). Prints, per type, the inputs the result
says it was given, the measured latency with its p10-p90 spread, peak memory, and any error in one line.

    python benchmarks/measured_types.py                       # the default sample, one per line
    python benchmarks/measured_types.py --types bert,whisper --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from architecture_coverage import default_config  # noqa: E402

from efficiency import units  # noqa: E402

# Small types across every modality: text encoder, decoder, encoder-decoder, forecasting; vision transformer and
# CNN; raw-waveform and log-mel speech; image-text.
SAMPLE = ("bert", "gpt2", "t5", "patchtst", "vit", "resnet", "wav2vec2", "whisper", "clip", "siglip")


def measure(model_type: str, threads: int, timeout_s: float) -> dict:
    config = default_config(model_type)
    config.pop("_filled")
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryDirectory() as data:
        (Path(folder) / "config.json").write_text(json.dumps(config, default=str))
        command = [sys.executable, "-m", "efficiency", "profile", folder, "--metrics", "all", "--json"]
        command += ["--threads", str(threads), "--timeout", str(timeout_s)]
        env = {**os.environ, "EFFICIENCY_DATA_DIR": data, "HF_HUB_OFFLINE": "1"}  # a throwaway store
        began = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout_s + 120)
        seconds = time.perf_counter() - began
    try:
        (row,) = json.loads(done.stdout)
    except ValueError:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1][:160]
        return {"type": model_type, "error": f"exit {done.returncode}: {tail}", "seconds": seconds}
    return {**row, "type": model_type, "seconds": seconds}


def line(row: dict) -> str:
    if row.get("error"):
        return f"FAIL {row['type']:<12} {row['error']}"
    latency = row.get("latency_ms") or {}
    spread = f"p10-p90 {units.duration(latency.get('p10'))}-{units.duration(latency.get('p90'))}"
    return (
        f"ok   {row['type']:<12} {row.get('inputs', ''):<44} {units.params(row.get('params')):>9} "
        f"{units.flops(row.get('flops')):>12}  latency {units.duration(latency.get('median'))} ({spread})  "
        f"peak {units.nbytes(row.get('peak_memory_bytes'))}  [{row['seconds']:.0f} s]"
        + (f"  NOISY: {row['noise'].get('reason')}" if (row.get("noise") or {}).get("noisy") else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--types", default=",".join(SAMPLE), help="comma-separated model types")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per type")
    parser.add_argument("--json", help="write every result to this file")
    args = parser.parse_args()
    rows = []
    for model_type in args.types.split(","):
        rows.append(measure(model_type, args.threads, args.timeout))
        print(line(rows[-1]), flush=True)
    ok = sum(not row.get("error") for row in rows)
    print(f"\n{ok}/{len(rows)} types profiled with --metrics all")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
