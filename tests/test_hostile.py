"""Hostile input: every case ends in one clear line naming what was wrong and what is accepted.

Never a traceback, never a hang (each test runs under a SIGALRM deadline), never code from outside.
Cases are grouped: model names and paths, config files, workloads, devices and dtypes, giants,
uploads, remote code, database locations, CLI arguments, what the app writes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from efficiency.cli.main import main
from efficiency.models import loading
from efficiency.models.catalog import UnknownModelError
from efficiency.models.inputs import fit_workload
from efficiency.models.loading import MAX_CONFIG_BYTES, ModelLoadError, RemoteCodeRefused, check_workload, resolve
from efficiency.specs import MAX_BATCH_SIZE, Workload
from efficiency.store.store import ResultStore, StoreError
from efficiency.validation import InputError, check_upload, display_safe, printable

ROOT = Path(__file__).resolve().parents[1]
DEADLINE_S = 90
RESOLVE_ERRORS = (UnknownModelError, ModelLoadError)
TINY_GPT2 = {
    "model_type": "gpt2",
    "n_layer": 1,
    "n_embd": 32,
    "n_head": 2,
    "n_positions": 64,
    "vocab_size": 128,
    "bos_token_id": 0,
    "eos_token_id": 0,
    "architectures": ["GPT2LMHeadModel"],
}


@pytest.fixture(autouse=True)
def deadline():
    """A hang fails the test instead of stalling the suite."""

    def expired(signum, frame):
        raise TimeoutError(f"hostile case still running after {DEADLINE_S} s: that is a hang")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(DEADLINE_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def one_clear_line(message: str) -> str:
    assert message and "\n" not in message and "Traceback" not in message, message
    assert message.isprintable(), f"raw control character in {message!r}"
    return message


def folder(path: Path, config: object) -> str:
    path.mkdir(parents=True, exist_ok=True)
    text = config if isinstance(config, (str, bytes)) else json.dumps(config)
    (path / "config.json").write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


# ---------------------------------------------------------------- model names, Hub ids, paths


def test_unknown_id_offline_names_the_closest_ids_and_what_is_accepted():
    with pytest.raises(UnknownModelError) as caught:
        resolve("gpt-3-turbo-ultra")
    message = one_clear_line(str(caught.value))
    assert "unknown model 'gpt-3-turbo-ultra'" in message and "HF_HUB_OFFLINE" in message
    assert "see the catalog" in message and "local folder that holds a config.json" in message


@pytest.mark.parametrize("name", ["someorg/some-model", "no-such-model-xyz"])
def test_hub_id_without_network_fails_at_once_without_hf_hub_offline(monkeypatch, name):
    """No HF_HUB_OFFLINE: the quick TCP check answers, and the Hub client is never called."""
    monkeypatch.delenv("HF_HUB_OFFLINE")
    loading.hub_reachable.cache_clear()

    def no_network(*args, **kwargs):
        raise OSError("Network is unreachable")

    def never(*args, **kwargs):
        raise AssertionError("the Hub client must not be called offline")

    monkeypatch.setattr(loading.socket, "create_connection", no_network)
    monkeypatch.setattr("huggingface_hub.hf_hub_download", never)
    started = time.monotonic()
    try:
        with pytest.raises(UnknownModelError) as caught:
            resolve(name)
    finally:
        loading.hub_reachable.cache_clear()
    assert time.monotonic() - started < 2
    message = one_clear_line(str(caught.value))
    assert "offline: cannot reach huggingface.co" in message and "config.json" in message


def test_hub_id_on_this_machine_answers_within_seconds(monkeypatch):
    """Unpatched: here the TCP check fails at once; where a network exists the Hub says 'not found'."""
    monkeypatch.delenv("HF_HUB_OFFLINE")
    loading.hub_reachable.cache_clear()
    started = time.monotonic()
    try:
        with pytest.raises(UnknownModelError) as caught:
            resolve("efficiency-dashboard-tests/no-such-model-9f3e1")
    finally:
        loading.hub_reachable.cache_clear()
    assert time.monotonic() - started < 15
    message = one_clear_line(str(caught.value))
    assert "offline" in message or "not found on the Hub" in message


@pytest.mark.parametrize("name", ["", "   ", None, 42])
def test_empty_or_non_text_names(name):
    with pytest.raises(UnknownModelError) as caught:
        resolve(name)
    assert "give a catalog id, an alias, a local folder or a Hub id" in one_clear_line(str(caught.value))


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: str(p / "missing"), "no such folder"),
        (lambda p: (p / "weights.bin").write_text("x") and str(p / "weights.bin"), "is a file; give the folder"),
        (lambda p: str(p), "no config.json in that folder"),
        (lambda p: folder(p, "{'model_type': 'gpt2'}"), "not valid JSON"),
        (lambda p: folder(p, '{"model_type": "gpt2",'), "not valid JSON"),
        (lambda p: folder(p, ""), "config.json is empty"),
        (lambda p: folder(p, b"\xff\xfe\x00garbage"), "not valid JSON"),
        (lambda p: folder(p, "[" * 100_000 + "]" * 100_000), "nested too deeply"),
        (lambda p: folder(p, '{"model_type": "gpt2", "n_layer": ' + "9" * 5000 + "}"), "not valid JSON"),
        (lambda p: folder(p, [{"model_type": "gpt2"}]), "must hold a JSON object, not list"),
        (lambda p: folder(p, "null"), "must hold a JSON object, not NoneType"),
        (lambda p: folder(p, {"hidden_size": 64}), "no 'model_type'"),
        (lambda p: folder(p, {"model_type": ["gpt2"]}), "no 'model_type'"),
        (lambda p: (p / "config.json").mkdir() or str(p), "no config.json in that folder"),
        (lambda p: (p / "config.json").symlink_to("/dev/zero") or str(p), "no config.json in that folder"),
    ],
    ids=[
        "missing",
        "a-file",
        "no-config",
        "python-not-json",
        "truncated-json",
        "empty",
        "binary",
        "deeply-nested",
        "5000-digit-int",
        "json-list",
        "json-null",
        "no-model-type",
        "model-type-not-text",
        "config-is-a-folder",
        "config-is-dev-zero",
    ],
)
def test_bad_local_folders(tmp_path, make, expected):
    with pytest.raises(ModelLoadError) as caught:
        resolve(make(tmp_path))
    assert expected in one_clear_line(str(caught.value))


def test_config_over_the_size_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = tmp_path / "big"
    path.mkdir()
    with open(path / "config.json", "wb") as handle:  # sparse: costs no disk
        handle.truncate(MAX_CONFIG_BYTES + 1)
    monkeypatch.setattr(Path, "open", lambda *a, **k: pytest.fail("an oversized file must not be read"))
    with pytest.raises(ModelLoadError) as caught:
        resolve(str(path))
    assert f"the limit is {MAX_CONFIG_BYTES}" in one_clear_line(str(caught.value))


def test_unknown_model_type_is_refused_naming_it():
    with pytest.raises(RemoteCodeRefused) as caught:
        loading.spec_from_config_dict({"model_type": "frobnicator-9000"}, "x", "local", "x")
    message = one_clear_line(str(caught.value))
    assert "'frobnicator-9000' is not part of transformers" in message and "trust_remote_code" in message


def test_architecture_that_needs_remote_code_is_refused(tmp_path):
    config = {"model_type": "phi-custom", "auto_map": {"AutoModelForCausalLM": "modeling_phi.PhiForCausalLM"}}
    with pytest.raises(RemoteCodeRefused) as caught:
        resolve(folder(tmp_path, config))
    message = one_clear_line(str(caught.value))
    assert "custom code in 'auto_map'" in message and "never enabled" in message


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "..",
        "/etc",
        "a/../../b",
        "%2e%2e%2fetc%2fpasswd",
        "..%2F..%2Fetc",
        "..\\..\\windows\\system32",
        "/etc/passwd/../shadow",
        "file:///etc/passwd",
        "https://huggingface.co/gpt2/../../etc",
    ],
)
def test_path_traversal_strings_end_in_a_clear_error_and_never_reach_the_hub(monkeypatch, name):
    monkeypatch.setattr(loading, "_from_hub", lambda n: pytest.fail(f"{n!r} must not be sent to the Hub"))
    with pytest.raises(RESOLVE_ERRORS) as caught:
        resolve(name)
    message = one_clear_line(str(caught.value))
    accepted = ("no such folder", "is a file", "no config.json", "not a valid Hub id")
    assert any(reason in message for reason in accepted), message
    assert "%2F" not in name or "%2F" in message  # never URL-decoded into a path


@pytest.mark.parametrize(
    "name",
    ["bert\x1b[31m", "bert\x00", "gpt2\x7f", "ber\u202et", "gpt\u200b2", "bert\x9b31m", "a\u2028b", "x\rgpt2"],
    ids=["ansi-escape", "nul", "del", "bidi-override", "zero-width", "c1-csi", "line-separator", "carriage-return"],
)
def test_names_with_control_characters_are_refused_without_echoing_them(name):
    with pytest.raises(UnknownModelError) as caught:
        resolve(name)
    message = one_clear_line(str(caught.value))
    assert "control or invisible characters" in message and "plain text" in message


@pytest.mark.parametrize(
    "name",
    ["<script>alert(1)</script>", "**bold** _it_", "[click](javascript:alert(1))", "![x](http://evil/x.png)", "$x^2$"],
)
def test_names_with_html_or_markdown_are_shown_inert(name):
    with pytest.raises(UnknownModelError) as caught:
        resolve(name)
    message = one_clear_line(str(caught.value))
    shown = display_safe(message, max_chars=None)
    assert "<" not in shown and ">" not in shown
    assert not re.search(r"(?<!\\)[*_\[\]()$!]", shown), shown  # every Markdown character is escaped


def test_a_very_long_name_is_refused_without_being_echoed():
    with pytest.raises(UnknownModelError) as caught:
        resolve("a" * 100_000)
    message = one_clear_line(str(caught.value))
    assert "the limit is 1024" in message and len(message) < 200


# ---------------------------------------------------------------- workloads


@pytest.mark.parametrize(
    ("model", "seq_len", "limit"),
    [("bert-base-uncased", 513, 512), ("gpt2", 1025, 1024), ("roberta-base", 513, 512)],
)
def test_a_sequence_beyond_the_models_positions_runs_at_its_maximum_and_says_so(model, seq_len, limit):
    spec = resolve(model)
    assert fit_workload(spec, Workload(seq_len=limit)) == (Workload(seq_len=limit), [])  # the limit itself is kept
    fitted, notes = fit_workload(spec, Workload(seq_len=seq_len))
    assert fitted == Workload(seq_len=limit)
    assert notes == [f"Text capped at the model's maximum of {limit} positions (asked {seq_len})."]


def test_a_short_position_model_is_counted_at_its_maximum(tmp_path):
    """A folder's text model with 64 positions, asked for 128 tokens: counted at 64, the result says so."""
    from efficiency.counters.static import profile_static  # lazy: as in the giants' tests below

    result = profile_static(folder(tmp_path, TINY_GPT2), Workload(seq_len=128)).to_result()
    assert result.error is None and result.workload["seq_len"] == 64
    assert result.inputs == "text 64 tokens"
    assert "Text capped at the model's maximum of 64 positions (asked 128)." in result.notes
    assert result.flops == profile_static(folder(tmp_path, TINY_GPT2), Workload(seq_len=64)).flops


@pytest.mark.parametrize("batch", [0, -1, 10**9])
def test_batch_outside_the_accepted_range(batch):
    with pytest.raises(ValueError) as caught:
        Workload(batch_size=batch)
    assert f"batch_size: {batch} is outside the accepted range 1..{MAX_BATCH_SIZE}" in one_clear_line(str(caught.value))


@pytest.mark.parametrize(("field", "value"), [("batch_size", 1.5), ("seq_len", "128"), ("image_size", True)])
def test_numbers_that_are_not_whole(field, value):
    with pytest.raises(ValueError) as caught:
        Workload(**{field: value})
    assert f"{field}: must be a whole number" in one_clear_line(str(caught.value))


def test_image_size_not_a_multiple_of_the_patch_size():
    with pytest.raises(ModelLoadError) as caught:
        check_workload(resolve("vit-b16"), Workload(image_size=230))
    assert "image_size 230 is not a multiple of the patch size 16" in one_clear_line(str(caught.value))


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"model_type": "bert", "max_position_embeddings": "lots"}, "max_position_embeddings"),
        ({"model_type": "gpt2", "n_positions": None}, "n_positions"),
        ({"model_type": "vit", "patch_size": 0}, "patch_size"),
        ({"model_type": "swin", "window_size": -7}, "window_size"),
    ],
)
def test_config_limits_that_are_not_numbers(config, field):
    spec = loading.spec_from_config_dict(config, "hostile", "local", "x")
    with pytest.raises(ModelLoadError) as caught:
        check_workload(spec, Workload())
    assert f"config field '{field}' must be a whole number" in one_clear_line(str(caught.value))


# ---------------------------------------------------------------- devices and dtypes


def test_a_dtype_the_device_cannot_run(tmp_path):
    from efficiency.measure import measure_model, supported_dtypes

    assert "float16" not in supported_dtypes("cpu")
    spec = resolve(folder(tmp_path, TINY_GPT2))
    with pytest.raises(ValueError) as caught:
        measure_model(spec, Workload(seq_len=8, dtype="float16"), device="cpu")
    assert "dtype: float16 is not measured on cpu; accepted there: float32, bfloat16" in one_clear_line(
        str(caught.value)
    )


@pytest.mark.parametrize(
    ("device", "expected"), [("tpu", "'tpu' is not a device name; use cpu, cuda[:N] or mps"), ("cuda:7", "cuda")]
)
def test_devices_that_do_not_exist_here(device, expected):
    from efficiency.measure import check_device

    with pytest.raises(ValueError) as caught:
        check_device(device)
    message = one_clear_line(str(caught.value))
    assert message.startswith("device:") and expected in message


# ---------------------------------------------------------------- giants


class RecordingExecutor:
    """The local executor's memory answer, but it fails the test if asked to run anything."""

    def memory_available(self, job):
        import psutil

        return psutil.virtual_memory().available

    def execute(self, jobs, on_progress):
        assert not jobs, f"refused jobs must not start a process: {[job.model for job in jobs]}"
        return iter(())


def test_a_giant_asked_for_measured_latency_on_cpu_is_refused_and_offered_the_static_profile():
    from efficiency.run.jobs import estimate_job_memory
    from efficiency.run.runner import Job, Runner

    job = Job("mt-nlg-530b", Workload(seq_len=128).for_modality("text"), metrics="all", device="cpu")
    [result] = Runner(RecordingExecutor(), estimator=estimate_job_memory).run([job])
    message = one_clear_line(result.error)
    assert result.error_kind == "refused" and result.measured is False
    assert re.fullmatch(
        r"needs ~\S+ TiB \(estimated: [^)]*\), \S+ \S+ available; the static profile \(counts only\) still works",
        message,
    )


def giant_config(n_layer: int, model_type: str = "gpt2") -> dict:
    """n_embd = 10^6: about 1.2 * 10^13 parameters per layer."""
    return {"model_type": model_type, "n_embd": 1_000_000, "n_layer": n_layer, "n_head": 8, "n_positions": 1024}


def test_a_config_declaring_1e17_parameters_counts_on_meta_in_seconds_without_memory(tmp_path):
    """Decision: a stack of identical layers is counted weight-free on 1- and 2-layer copies and scaled, so
    a declared 10^17 parameters costs seconds and no weights; nothing is allocated, nothing is refused."""
    from efficiency.counters.static import profile_static

    reset_peak_rss()
    started = time.monotonic()
    profile = profile_static(folder(tmp_path, giant_config(n_layer=10_000)), Workload(seq_len=128))
    assert time.monotonic() - started < 60
    assert profile.params.total > 10**17 and profile.flops > 10**19
    peak = peak_rss_bytes()
    assert peak is None or peak < 4 * 2**30  # the process's peak while counting: GiB, not the 400 PB declared


def reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets the peak resident size (VmHWM) to the current one."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_bytes() -> int | None:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) * 1024 if found else None


def test_a_config_declaring_1e13_parameters_is_refused_measurement_with_the_static_offer(tmp_path):
    from efficiency.run.jobs import estimate_job_memory
    from efficiency.run.runner import Job, Runner

    model = folder(tmp_path, giant_config(n_layer=1))
    job = Job(model, Workload(seq_len=128).for_modality("text"), metrics="all")
    [result] = Runner(RecordingExecutor(), estimator=estimate_job_memory).run([job])
    assert result.error_kind == "refused"
    message = one_clear_line(result.error)
    assert "TiB" in message and "the static profile (counts only) still works" in message and "--" not in message


def test_an_absurdly_deep_stack_that_cannot_be_depth_scaled_is_refused_at_once(tmp_path):
    """GPT-J is counted at full depth; 10^4 layers would take about half an hour: refused, with the limit."""
    from efficiency.counters.static import safe_profile_static

    config = {"model_type": "gptj", "n_embd": 64, "n_layer": 10_000, "n_head": 4, "rotary_dim": 8}
    started = time.monotonic()
    profile = safe_profile_static(folder(tmp_path, config), Workload(seq_len=16))
    assert time.monotonic() - started < 30
    assert "building more than 1024 layers is refused" in one_clear_line(profile.error)


# ---------------------------------------------------------------- uploads


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "upload is empty"),
        (None, "upload is empty"),
        (b" " * (MAX_CONFIG_BYTES + 1), f"the limit is {MAX_CONFIG_BYTES}"),
        (b"\xff\xfe\xfa", "not UTF-8"),
        (b"{model_type: gpt2}", "not valid JSON"),
        (b'["a", "list"]', "must hold a JSON object"),
        (b'"just a string"', "must hold a JSON object"),
        (b"[" * 50_000, "nested too deeply"),
        (b'{"n": ' + b"1" * 5000 + b"}", "not valid JSON"),
    ],
    ids=["empty", "none", "over-limit", "not-utf8", "not-json", "list", "string", "nested", "huge-int"],
)
def test_bad_uploads(data, expected):
    with pytest.raises(InputError) as caught:
        check_upload(data)
    assert expected in one_clear_line(str(caught.value))


def test_a_good_upload_is_data_only():
    config = check_upload(b'\xef\xbb\xbf{"model_type": "gpt2", "auto_map": {"AutoModel": "m.M"}}')
    assert config["model_type"] == "gpt2"
    spec = loading.spec_from_config_dict(config, "upload", "upload", "config.json")
    assert "auto_map" not in spec.config


def test_the_server_config_limits_uploads_and_binds_to_loopback():
    import tomllib

    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert settings["server"]["address"] in {"127.0.0.1", "localhost"}
    assert settings["server"]["maxUploadSize"] <= 1
    assert settings["browser"]["gatherUsageStats"] is False


# ---------------------------------------------------------------- trust_remote_code


def test_trust_remote_code_cannot_be_asked_for_on_the_command_line(capsys):
    assert main(["profile", "gpt2", "--trust-remote-code"]) == 2
    assert "unrecognized arguments: --trust-remote-code" in one_clear_line(capsys.readouterr().err.strip())


def test_no_code_path_passes_trust_remote_code():
    """Source check: nothing in the engine or the pages passes or reads trust_remote_code."""
    sources = [*(ROOT / "efficiency").rglob("*.py"), *ROOT.glob("app.py"), *(ROOT / "pages").glob("*.py")]
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sources
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"trust_remote_code\s*=|['\"](HF_|TRANSFORMERS_)?TRUST_REMOTE_CODE['\"]", line)
    ]
    assert offenders == []


def test_trust_remote_code_cannot_be_enabled_by_a_config_or_the_environment(tmp_path, monkeypatch):
    import transformers

    from efficiency.counters.static import profile_static
    from efficiency.models.loading import build_model

    for name in ("TRUST_REMOTE_CODE", "HF_TRUST_REMOTE_CODE", "TRANSFORMERS_TRUST_REMOTE_CODE"):
        monkeypatch.setenv(name, "1")
    calls: list[tuple[str, object]] = []

    def spy(owner, attribute):
        original = getattr(owner, attribute)

        def wrapper(*args, **kwargs):
            calls.append((f"{getattr(owner, '__name__', owner)}.{attribute}", kwargs.get("trust_remote_code")))
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, attribute, wrapper)

    spy(transformers.AutoConfig, "for_model")
    for auto in ("AutoModel", "AutoModelForCausalLM"):
        spy(getattr(transformers, auto), "from_config")

    def refuse(*args, **kwargs):
        raise AssertionError("remote code was about to be loaded")

    for module in [m for name, m in list(sys.modules.items()) if name.startswith("transformers") and m]:
        for attribute in ("get_class_from_dynamic_module", "get_cached_module_file"):
            if hasattr(module, attribute):
                monkeypatch.setattr(module, attribute, refuse)

    config = {**TINY_GPT2, "trust_remote_code": True, "auto_map": {"AutoModelForCausalLM": "modeling_x.X"}}
    spec = resolve(folder(tmp_path, config))
    build_model(spec, device="cpu")
    profile_static(spec, Workload(seq_len=8))
    assert calls and all(trusted is None for _, trusted in calls), calls
    assert "trust_remote_code" not in spec.config and "auto_map" not in spec.config


AUTO_MAP_SIDE_EFFECT = """
import pathlib
pathlib.Path({marker!r}).write_text("custom code ran: " + __name__)
raise SystemExit("custom code must never run")
"""


def evil_folder(tmp_path: Path, config: dict) -> tuple[str, Path]:
    """A config.json with auto_map next to modeling_*.py / configuration_*.py files that leave a marker."""
    marker = tmp_path / "MARKER"
    model = tmp_path / "evil_model"
    model.mkdir()
    for module in ("modeling_evilnet", "configuration_evilnet", "tokenization_evilnet", "__init__"):
        (model / f"{module}.py").write_text(AUTO_MAP_SIDE_EFFECT.format(marker=str(marker)))
    auto_map = {
        "AutoConfig": "configuration_evilnet.EvilConfig",
        "AutoModel": "modeling_evilnet.EvilModel",
        "AutoModelForCausalLM": "modeling_evilnet.EvilForCausalLM",
        "AutoTokenizer": ["tokenization_evilnet.EvilTokenizer", None],
    }
    return folder(model, {**config, "auto_map": auto_map, "trust_remote_code": True}), marker


def no_evil_module_loaded() -> bool:
    return not [name for name in sys.modules if "evilnet" in name]


def test_auto_map_with_an_unknown_architecture_never_imports_its_code(tmp_path, capsys):
    model, marker = evil_folder(tmp_path, {"model_type": "evilnet", "hidden_size": 8})
    with pytest.raises(RemoteCodeRefused):
        resolve(model)
    assert main(["profile", model, "--json"]) == 1
    assert "never enabled" in json.loads(capsys.readouterr().out)[0]["error"]
    assert not marker.exists() and no_evil_module_loaded()


def test_auto_map_on_a_known_architecture_is_ignored_through_build_profile_and_cli(tmp_path, capsys):
    """The proof: a known model_type carrying auto_map profiles (static, real build, CLI) and its custom
    code files are never imported: no marker, no module, nothing copied into transformers' module cache."""
    from transformers.dynamic_module_utils import HF_MODULES_CACHE

    from efficiency.counters.static import profile_static
    from efficiency.models.loading import build_model

    model, marker = evil_folder(tmp_path, TINY_GPT2)
    spec = resolve(model)
    assert "ignored" in spec.note and spec.task == "causal-lm"
    build_model(spec, device="cpu")
    assert profile_static(spec, Workload(seq_len=8)).params.total > 0
    assert main(["profile", model, "--seq-len", "8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["error"] is None
    assert not marker.exists() and no_evil_module_loaded()
    assert not list(Path(HF_MODULES_CACHE).rglob("*evilnet*"))


# ---------------------------------------------------------------- database location


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("{tmp}/no/such/folder/results.db", "does not exist"),
        ("{tmp}/notes.txt", "not a database"),
        ("postgresql+psycopg://user:pw@host:port/db", "malformed"),
        ("mysql+nosuchdriver://user@host/db", "driver"),
        ("gopher://host/db", "unknown database kind"),
        ("{tmp}", "is a folder"),
    ],
)
def test_bad_database_locations_give_one_line(tmp_path, capsys, location, expected):
    (tmp_path / "notes.txt").write_text("not a database, just notes " * 200)
    location = location.format(tmp=tmp_path)
    with pytest.raises(StoreError) as caught:
        ResultStore(location)
    assert expected in one_clear_line(str(caught.value)) and ":pw@" not in str(caught.value)
    assert main(["profile", "gpt2", "--metrics", "all", "--db", location]) == 2
    assert expected in one_clear_line(capsys.readouterr().err.strip())


# ---------------------------------------------------------------- command-line arguments


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--threads", "0"], "--threads: 0 must be at least 1"),
        (["--timeout", "-1"], "--timeout: -1 must be a finite number of seconds above 0"),
        (["--timeout", "nan"], "must be a finite number of seconds"),
        (["--timeout", "soon"], "is not a number of seconds"),
        (["--repeats", "0"], "--repeats: 0 must be at least 1"),
        (["--metrics", "all", "--device", "tpu"], "--device 'tpu': accepted are cpu, cuda, cuda:N and mps"),
        (["--metrics", "all", "--device", "cuda:7"], "cuda"),
        (["--metrics", "all", "--dtype", "float16"], "--dtype float16 is not measured on cpu; accepted there"),
        (["--metrics", "all", "--threads", "100000"], "--threads 100000: this machine has"),
        (["--image-size", "224px"], "'224px' is not a whole number"),
        (["--mode", "serve"], "invalid choice: 'serve'"),
    ],
)
def test_bad_cli_arguments_exit_2_before_any_model_runs(capsys, monkeypatch, argv, expected):
    if "cuda:7" in argv:
        import torch

        monkeypatch.setattr(torch.cuda, "device_count", lambda: min(torch.cuda.device_count(), 1))
    monkeypatch.setattr("efficiency.run.jobs.profile_measured", lambda *a, **k: pytest.fail("no model may run"))
    assert main(["profile", "gpt2", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = one_clear_line(captured.err.strip())
    assert err.startswith("error:") and expected in err


def test_cli_never_prints_raw_control_characters(capsys):
    assert main(["profile", "gpt2\x1b[2J", "bad\u202ename", "--seq-len", "8"]) == 1
    captured = capsys.readouterr()
    assert "\x1b" not in captured.out + captured.err and "\u202e" not in captured.out + captured.err
    assert "control or invisible characters" in captured.out and "\\x1b" in captured.out
    assert main(["models", "\x1b]0;pwned\x07"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and "\\x1b" in err


def test_printable_escapes_and_truncates():
    assert printable("a\x1bb\u202ec") == "a\\x1bb\\u202ec"
    assert printable("x" * 500, 10) == "x" * 9 + "…"
    assert display_safe("<b>**hi**</b>") == "&lt;b&gt;\\*\\*hi\\*\\*&lt;\\/b&gt;"


# ---------------------------------------------------------------- what the app writes

SCENARIO = """
import json, sys
from efficiency.counters.static import profile_static
from efficiency.run.jobs import estimate_job_memory
from efficiency.run.runner import Job, LocalExecutor, Runner
from efficiency.specs import Workload
from efficiency.store.store import ResultStore

if __name__ == "__main__":
    model = sys.argv[1]
    static = profile_static(model, Workload(seq_len=8))
    runner = Runner(LocalExecutor(), store=ResultStore(), estimator=estimate_job_memory)
    workload = Workload(seq_len=8).for_modality("text")
    [measured] = runner.run([Job(model, workload, metrics="all", repeats=1, timeout_s=150)])
    print(json.dumps({"params": static.params.total, "error": measured.error,
                      "measured": measured.measured, "rows": len(ResultStore().list())}))
"""


def snapshot(*folders: Path) -> set[str]:
    return {str(path) for folder in folders for path in folder.rglob("*")}


def test_profiles_write_only_inside_the_data_dir_and_never_run_auto_map_code(tmp_path):
    """Static profile and a measured run through the runner (forked worker, results store), in a clean
    process whose HOME, cwd, temp and data dirs are all fresh: only the data dir gains files, and the
    auto_map code next to the config is never run, in the parent or the worker."""
    model, marker = evil_folder(tmp_path, TINY_GPT2)
    home, cwd, data, tmp = (tmp_path / name for name in ("home", "cwd", "data", "tmp"))
    for path in (home, cwd, tmp):
        path.mkdir()
    databases_before = set(ROOT.rglob("*.db"))
    model_before = snapshot(Path(model))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "EFFICIENCY_DATA_DIR": str(data),
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "TRUST_REMOTE_CODE": "1",
        "HF_TRUST_REMOTE_CODE": "1",
    }
    script = tmp_path / "scenario.py"
    script.write_text(textwrap.dedent(SCENARIO))
    done = subprocess.run(
        [sys.executable, str(script), model], cwd=cwd, env=env, capture_output=True, text=True, timeout=80
    )
    assert done.returncode == 0, done.stderr[-2000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome == {"params": outcome["params"], "error": None, "measured": True, "rows": 1}
    assert not marker.exists()
    assert snapshot(home) == set() and snapshot(cwd) == set() and snapshot(Path(model)) == model_before
    assert set(ROOT.rglob("*.db")) == databases_before
    assert "results.db" in {p.name for p in data.iterdir()}
