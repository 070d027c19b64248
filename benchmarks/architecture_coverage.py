"""How many of transformers' architectures profile statically: each base model type in ``MODEL_MAPPING_NAMES``,
built from transformers' own default config (depth cut to 2 layers where the config has a depth field, and every
per-layer list with it, to keep it quick), saved as a config.json in a folder and profiled as a user's folder is.

Each type runs in its own process (forked from one that imported torch and transformers once) under a time
limit. Prints coverage overall and per modality with two denominators (all types; types transformers itself
builds from that config on the meta device) and each failure grouped by reason, one line each.

    python benchmarks/architecture_coverage.py --sample 40
    python benchmarks/architecture_coverage.py --types bert,vit,whisper --json coverage.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REDUCED_DEPTH = 2
SUB_CONFIG_KEYS = ("text_config", "vision_config", "audio_config", "encoder_config", "decoder_config")
# Fields some of transformers' default configs leave unset although the model cannot run without them; each is
# filled only where the default config has it as None (in the config or a sub-config), and the run lists the types
# that got one.
INCOMPLETE_DEFAULTS = {
    "prediction_length": 24,  # the horizon of Time Series Transformer, Informer, Autoformer (PatchTST's default)
    "num_experts_per_tok": 6,  # DeepSeek-V2's routed experts per token (its default config leaves it None)
    # BLIP-2's and InstructBLIP's placeholder token for the query outputs (their forward scatters the queries into
    # the positions holding it); Salesforce/blip2-opt-2.7b's value, within the default OPT text vocabulary (50272)
    "image_token_index": 50265,
    # InstructBLIP-Video's placeholder for the per-frame query outputs (its forward scatters them into the positions
    # holding it; with None it cannot run): the same id, its default text config being the same OPT
    "video_token_index": 50265,
}
# GLM-4V's modeling code splits the rotary frequencies by its default mrope_section [8, 12, 12] (32 frequencies),
# which only fits head_dim 128 at partial_rotary_factor 0.5; the default config's rope_parameters omit the factor.
ROPE_FILLS = {
    t: {"partial_rotary_factor": 0.5} for t in ("glm4v", "glm4v_text", "glm46v", "glm_image", "glm_image_text", "glmga")
}

# Fields one type's default config leaves out although its modeling code cannot run without them (dotted paths
# into the config; filled only where absent or None):
TYPE_FILLS = {
    # the rotary split the modeling code defaults to, mrope_section [8, 12, 12] = 32 frequencies, is head_dim 128 at
    # partial_rotary_factor 0.5; without head_dim the config derives 4096 / 96 = 42
    "glm4v_moe": {"text_config.head_dim": 128},
    "glm4v_moe_text": {"head_dim": 128},
    # the modeling code's default mrope_section [24, 20, 20] = 64 frequencies = head_dim 128 / 2
    "qwen3_omni_moe_thinker": {"text_config.head_dim": 128},
    # its attention always builds a sliding-window mask, although every layer of the default config is full
    # attention: the window's size never enters the count
    "step3p7": {"text_config.sliding_window": 4096},
}

# Default configs that contradict their own modeling code (set, not missing): replaced, and listed as filled.
TYPE_FIXES = {
    # its head decodes six feature maps, while the default backbone outputs only the last stage
    "uvdoc": {
        "backbone_config.out_features": [f"stage{i}" for i in range(1, 7)],
        "backbone_config.out_indices": list(range(1, 7)),
    },
    # no feature level at all (an empty projector list): one level at scale 1.0, the smallest that decodes anything
    "lw_detr": {"projector_scale_factors": [1.0], "num_feature_levels": 1},
}


def _fill_type(config: dict, model_type: str) -> tuple[dict, list[str]]:
    """``config`` with TYPE_FILLS of ``model_type`` applied where absent or None and TYPE_FIXES applied, and the
    paths filled."""
    out, filled = dict(config), []
    fills = [(path, value, False) for path, value in TYPE_FILLS.get(model_type, {}).items()]
    fixes = [(path, value, True) for path, value in TYPE_FIXES.get(model_type, {}).items()]
    for path, value, always in fills + fixes:
        *parents, key = path.split(".")
        node = out
        for name in parents:
            node[name] = dict(node.get(name) or {})
            node = node[name]
        if always or node.get(key) is None:
            node[key] = value
            filled.append(path)
    return out, filled


def _complete(config: dict, model_type: str) -> tuple[dict, list[str]]:
    """``config`` with INCOMPLETE_DEFAULTS and ROPE_FILLS applied (sub-configs included), and what was filled."""
    filled = []
    out = dict(config)
    for key, value in INCOMPLETE_DEFAULTS.items():
        if key in out and out[key] is None:
            out[key] = value
            filled.append(key)
    rope = ROPE_FILLS.get(model_type)
    if rope and isinstance(out.get("rope_parameters"), dict):
        missing = {k: v for k, v in rope.items() if k not in out["rope_parameters"]}
        if missing:
            out["rope_parameters"] = {**out["rope_parameters"], **missing}
            filled += [f"rope_parameters.{k}" for k in missing]
    for sub in SUB_CONFIG_KEYS:
        if isinstance(out.get(sub), dict):
            out[sub], inner = _complete(out[sub], out[sub].get("model_type", model_type))
            filled += [f"{sub}.{name}" for name in inner]
    return out, filled


def default_config(model_type: str) -> dict:
    from transformers import CONFIG_MAPPING

    from efficiency.models.depth import shallow_config

    config = CONFIG_MAPPING[model_type]().to_dict()
    config = {k: v for k, v in config.items() if k not in {"transformers_version", "architectures"}}
    config, filled = _complete(config, model_type)
    config, typed = _fill_type(config, model_type)
    filled += typed
    return {**shallow_config(config, REDUCED_DEPTH), "model_type": model_type, "_filled": filled}


def _builds_on_meta(config: dict) -> bool:
    """Whether transformers itself builds the base model from this config on the meta device."""
    import torch
    from transformers import AutoConfig, AutoModel

    values = {k: v for k, v in config.items() if k != "model_type"}
    try:
        with torch.device("meta"):
            AutoModel.from_config(AutoConfig.for_model(config["model_type"], **values))
    except Exception:
        return False
    return True


def _transformers_params(spec) -> int:
    """transformers' own count of the very model the loader builds (the same class and config), on meta."""
    from efficiency.models.loading import build_model

    return build_model(spec, device="meta").num_parameters()


def _one_line(exc: BaseException) -> str:
    """The reason in one line, without the folder's ``local:<hex>`` id (so equal reasons group together)."""
    text = re.sub(r"local:[0-9a-f]{16}: ", "", " ".join(str(exc).split())) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:160]


def profile_one(model_type: str) -> dict:
    """One type: its modality, whether transformers builds it, whether it profiles, and why not (one line)."""
    from efficiency.counters.static import AGREEMENT, profile_static
    from efficiency.models.loading import resolve
    from efficiency.models.modality import infer_modality
    from efficiency.specs import Workload

    row: dict = {"type": model_type, "modality": "text", "buildable": False, "ok": False, "reason": ""}
    started = time.perf_counter()
    try:
        config = default_config(model_type)
        row["filled"] = config.pop("_filled")
        row["modality"] = infer_modality(model_type, config, set())
        row["buildable"] = _builds_on_meta(config)
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "config.json").write_text(json.dumps(config, default=str))
            spec = resolve(folder)
            row["modality"] = spec.modality
            profile = profile_static(spec, Workload(seq_len=128))  # a text model with fewer positions uses its own
            row.update(ok=True, flops=profile.flops, params=profile.params.total, notes=profile.notes)
            row["params_transformers"] = _transformers_params(spec)
            row["counter_differences"] = profile.counter_differences
            row["fvcore_error"] = profile.counter_errors.get("fvcore")
            row["fvcore_path"] = next((n for n in profile.notes if n.startswith("fvcore traced")), None)
            row["differences_explained"] = all(
                abs(d) <= AGREEMENT or any(n.startswith(f"{c} differs") for n in profile.notes)
                for c, d in profile.counter_differences.items()
            )
    except Exception as exc:  # the reason is the result
        row["reason"] = _one_line(exc)
    row["seconds"] = round(time.perf_counter() - started, 1)
    return row


def _child(model_type: str, conn) -> None:
    conn.send(json.dumps(profile_one(model_type), default=str))
    conn.close()


def run_isolated(model_type: str, timeout_s: float) -> dict:
    """One type in a process forked from this one (torch and transformers already imported), killed after timeout."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(model_type, send), daemon=True)
    process.start()
    send.close()
    row = None
    if receive.poll(timeout_s):
        try:
            row = json.loads(receive.recv())
        except EOFError:
            row = None
    process.join(5)
    if process.is_alive():
        process.kill()
        process.join()
    if row is not None:
        return row
    timed_out = process.exitcode is None or process.exitcode == -9
    reason = f"over {timeout_s:.0f} s" if timed_out else f"crashed: exit code {process.exitcode}"
    return {"type": model_type, "modality": "?", "buildable": None, "ok": False, "reason": reason}


def _fvcore_reason(row: dict) -> str:
    """fvcore's error in one short line, with the numbers and names that vary between types taken out, so that
    equal reasons group together."""
    text = row.get("fvcore_error") or "no fvcore error recorded (fvcore not run?)"
    text = re.sub(r"local:[0-9a-f]{16}: ", "", " ".join(text.split()))
    return re.sub(r"\d+", "N", text)[:140]


def _by_fvcore_reason(rows: list[dict]) -> list[str]:
    """One line per fvcore reason, most frequent first, with the types that failed for it."""
    groups: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        groups[_fvcore_reason(row)].append(row["type"])
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    return [f"  {len(types):>3}  {reason}  [{', '.join(sorted(types))}]" for reason, types in ordered]


def summarise(rows: list[dict]) -> list[str]:
    out = []

    def line(label: str, group: list[dict]) -> str:
        ok = sum(r["ok"] for r in group)
        buildable = [r for r in group if r["buildable"] or r["ok"]]
        ok_built = sum(r["ok"] for r in buildable)
        share = f"{ok / len(group):.0%}" if group else "-"
        share_built = f"{ok_built / len(buildable):.0%}" if buildable else "-"
        return (
            f"{label:<12} {ok:>3}/{len(group):<3} of all types ({share:>4})   "
            f"{ok_built:>3}/{len(buildable):<3} of types transformers builds on meta ({share_built:>4})"
        )

    out.append(line("overall", rows))
    by_modality = defaultdict(list)
    for row in rows:
        by_modality[row["modality"]].append(row)
    for modality in sorted(by_modality):
        out.append(line(modality, by_modality[modality]))
    counted = [r for r in rows if r["ok"]]
    params_off = [r["type"] for r in counted if r.get("params") != r.get("params_transformers")]
    unexplained = [r["type"] for r in counted if not r.get("differences_explained", True)]
    compared = [r for r in counted if r.get("counter_differences")]  # a second counter gave a count to compare
    alone = sorted(r["type"] for r in counted if not r.get("counter_differences"))
    agree = [r for r in compared if all(abs(d) <= 0.02 for d in r["counter_differences"].values())]
    out.append(f"parameters equal to transformers' own count: {len(counted) - len(params_off)}/{len(counted)}")
    if params_off:
        out.append(f"  differ: {', '.join(params_off)}")
    out.append(
        f"counted by two counters: {len(compared)}/{len(counted)}; within 2% of each other: {len(agree)}/"
        f"{len(compared)}; the rest name the ops behind it: {len(compared) - len(agree) - len(unexplained)}/"
        f"{len(compared) - len(agree)}"
    )
    if alone:  # fvcore's trace failed (its error is kept with the result): nothing to compare with
        out.append(f"counted by torch's counter alone (fvcore failed): {len(alone)}, by fvcore's reason:")
        out.extend(_by_fvcore_reason([r for r in counted if not r.get("counter_differences")]))
    fallback = sorted(r["type"] for r in compared if r.get("fvcore_path"))
    if fallback:
        listed = ", ".join(fallback)
        out.append(f"fvcore counted on a real CPU copy after its meta trace failed: {len(fallback)}: {listed}")
    if unexplained:
        out.append(f"  differences without named ops: {', '.join(unexplained)}")
    filled = [f"{r['type']} ({', '.join(r['filled'])})" for r in rows if r.get("filled")]
    if filled:
        out.append(f"default configs completed with INCOMPLETE_DEFAULTS: {', '.join(filled)}")
    reasons = Counter()
    examples = defaultdict(list)
    for row in rows:
        if not row["ok"]:
            key = re.sub(r"local:[0-9a-f]{16}: ", "", row["reason"])[:100]
            reasons[key] += 1
            examples[key].append(row["type"])
    if reasons:
        out.append("failures by reason:")
        for reason, count in reasons.most_common():
            out.append(f"  {count:>3}  {reason}  [{', '.join(examples[reason][:6])}]")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--types", help="comma-separated model types (default: every base model type)")
    parser.add_argument("--sample", type=int, help="profile a random sample of this many types")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per type")
    parser.add_argument("--jobs", type=int, default=2, help="types profiled at once")
    parser.add_argument("--json", help="write every row to this file")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(profile_one(args.one), default=str))
        return
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    types = args.types.split(",") if args.types else sorted(MODEL_MAPPING_NAMES)
    if args.sample:
        types = sorted(random.Random(args.seed).sample(types, min(args.sample, len(types))))
    import torch  # noqa: F401  (imported once here, so each forked type starts warm)

    from efficiency.counters.static import profile_static  # noqa: F401

    rows = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for row in pool.map(lambda t: run_isolated(t, args.timeout), types):
            rows.append(row)
            status = "ok  " if row["ok"] else "FAIL"
            seconds = row.get("seconds", "-")
            print(f"{status} {row['type']:<32} {row['modality']:<10} {seconds!s:>6} s  {row['reason']}", flush=True)
    print()
    print("\n".join(summarise(rows)))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
