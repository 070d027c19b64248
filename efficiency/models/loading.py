"""Model spec -> transformers config -> model with random weights, never downloading weights.

Three ways in: a catalog id or alias; a local folder holding a Hugging Face ``config.json``; a Hub id
fetched config-only when a network exists. ``trust_remote_code`` is never enabled: an architecture that
transformers does not ship is refused, and an ``auto_map`` entry is dropped before anything reads it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import threading
import time
import unicodedata
from concurrent.futures import Future
from contextlib import nullcontext
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from efficiency.models import catalog
from efficiency.models.catalog import UnknownModelError
from efficiency.models.modality import infer_modality, supported_task
from efficiency.models.sizes import size_problem
from efficiency.paths import data_dir
from efficiency.specs import LOCAL_MODEL_PREFIX, ModelSpec, Workload
from efficiency.validation import printable

MAX_CONFIG_BYTES = 1_000_000
VISION_MODEL_TYPES = {"vit", "deit", "swin", "convnext", "resnet", "efficientnet", "mobilenet_v2", "regnet", "beit"}
TASK_BY_ARCH_SUFFIX = (
    ("ForCausalLM", "causal-lm"),
    ("LMHeadModel", "causal-lm"),
    ("ForConditionalGeneration", "seq2seq-lm"),
    ("ForImageClassification", "image-classification"),
    ("ForImageClassificationWithTeacher", "image-classification"),
)
HUB_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,95})?$")
HUB_HOST = "huggingface.co"
HUB_CHECK_TIMEOUT_S = 3.0  # name resolution and connect together, before the "offline" line
MAX_NAME_CHARS = 1024  # a path or id longer than this is a paste accident, not a model
UNPRINTABLE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}  # control, format (bidi), unassigned, ...
# Never passed on to transformers: custom code (auto_map), requests to run it, and keys we set ourselves
# (model_type is AutoConfig.for_model's first argument; passing it again fails every local config).
DROPPED_CONFIG_KEYS = {"auto_map", "trust_remote_code", "_name_or_path", "transformers_version", "model_type"}
MAX_LAYERS = 1024
# A config from outside the catalog is known by its contents: "local:" and the first 16 hex digits of its
# sha256 (64 bits: no two configs on one machine collide), its copy kept in the data folder under that name.
LOCAL_ID_PREFIX = LOCAL_MODEL_PREFIX
LOCAL_ID_HEX = 16
LOCAL_ID_PATTERN = re.compile(rf"^{LOCAL_ID_PREFIX}[0-9a-f]{{{LOCAL_ID_HEX}}}$")
LOCAL_CONFIGS_DIR = "local-configs"
DTYPE_BY_NAME = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelLoadError(ValueError):
    """A model that cannot be built from its config, with the reason in one line."""


class RemoteCodeRefused(ModelLoadError):
    """The architecture needs code from outside transformers; we never run it."""


def known_model_types() -> set[str]:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return set(CONFIG_MAPPING_NAMES)


def _task_from_architectures(architectures: Any) -> str:
    if not isinstance(architectures, list):  # a hostile config may put anything here
        return "base"
    for arch in architectures:
        for suffix, task in TASK_BY_ARCH_SUFFIX:
            if isinstance(arch, str) and arch.endswith(suffix):
                return task
    return "base"


def spec_from_config_dict(config: dict[str, Any], model_id: str, origin: str, source: str) -> ModelSpec:
    """A ModelSpec from a config.json's contents; refuses remote-code architectures."""
    shown = printable(model_id)  # in messages: a long name is cut
    if not isinstance(config, dict):
        raise ModelLoadError(f"{shown}: config.json must hold a JSON object, not {type(config).__name__}")
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise ModelLoadError(f"{shown}: config.json has no 'model_type'; cannot tell which architecture to build")
    if model_type not in known_model_types():
        needs_code = " (its config names custom code in 'auto_map')" if "auto_map" in config else ""
        raise RemoteCodeRefused(
            f"{shown}: architecture {printable(model_type)!r} is not part of transformers{needs_code}; "
            "running code from a model repository (trust_remote_code) is never enabled"
        )
    clean = {k: v for k, v in config.items() if k not in DROPPED_CONFIG_KEYS}
    modality = infer_modality(model_type, clean, VISION_MODEL_TYPES)
    task = supported_task(model_type, _task_from_architectures(clean.pop("architectures", None)))
    dropped = " Its 'auto_map' (custom code) was ignored." if "auto_map" in config else ""
    return ModelSpec(
        id=model_id,
        model_type=model_type,
        task=task,
        modality=modality,
        config=clean,
        origin=origin,
        source=source,
        note=f"Built from {origin} config.json with random weights.{dropped}",
    )


def load_config_file(path: Path, model_id: str, limit: int = MAX_CONFIG_BYTES) -> dict[str, Any]:
    shown = printable(model_id)  # in messages: a long name is cut
    if not path.is_file():
        raise ModelLoadError(f"{shown}: no config.json in that folder")
    size = path.stat().st_size
    if size == 0:
        raise ModelLoadError(f"{shown}: config.json is empty")
    if size > limit:
        raise ModelLoadError(f"{shown}: config.json is {size} bytes; the limit is {limit}")
    try:
        with path.open("rb") as handle:  # bounded read: the file may have grown since stat()
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ModelLoadError(f"{shown}: config.json cannot be read ({type(exc).__name__})") from exc
    if len(data) > limit:
        raise ModelLoadError(f"{shown}: config.json is over the limit of {limit} bytes")
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError as exc:  # bad UTF-8, JSONDecodeError, an int beyond Python's digit limit
        raise ModelLoadError(f"{shown}: config.json is not valid JSON ({str(exc).splitlines()[0]})") from exc
    except RecursionError as exc:
        raise ModelLoadError(f"{shown}: config.json is nested too deeply to be a model config") from exc


def config_sha256(spec: ModelSpec) -> str:
    """sha256 of what defines a model built from a config: its architecture, task and cleaned config values,
    in canonical JSON (sorted keys), so key order, spacing and dropped keys (``auto_map``, versions) do not count."""
    identity = {"model_type": spec.model_type, "task": spec.task, "modality": spec.modality, "config": spec.config}
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _local_copy(digest: str) -> Path:
    return data_dir() / LOCAL_CONFIGS_DIR / f"{digest[:LOCAL_ID_HEX]}.json"


def local_spec(spec: ModelSpec, config: dict[str, Any], display: str) -> ModelSpec:
    """``spec`` (built by ``spec_from_config_dict`` from ``config``, a folder's config.json or an upload) known by
    its contents: id ``local:<first 16 hex of config_sha256>``, ``display`` as its name.

    An edited config is a new id (a stored result of the old one is never reused for it); two folders holding
    the same config share an id, and so their results. A copy is kept in the data folder under that id, so a
    job (in its worker process) builds exactly the config that was picked, whatever happens to the folder."""
    digest = config_sha256(spec)
    copy = {"config": config, "name": display, "source": spec.source}
    path = _local_copy(digest)
    text = json.dumps(copy, sort_keys=True, separators=(",", ":"))
    try:
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(text, encoding="utf-8")
            os.replace(partial, path)  # atomic: a concurrent reader sees the old copy or the new, never half
    except OSError as exc:
        raise ModelLoadError(f"{display}: cannot keep a copy of its config in {path.parent} ({exc.strerror})") from exc
    model_id = LOCAL_ID_PREFIX + digest[:LOCAL_ID_HEX]
    return replace(spec, id=model_id, name=display, config_sha256=digest)


def _from_local_id(model_id: str) -> ModelSpec:
    """A ``local:<hex>`` id back to its spec, from the copy kept when it was picked; the contents must still
    hash to the id (a copy edited by hand is refused, never built as something else)."""
    path = _local_copy(model_id.removeprefix(LOCAL_ID_PREFIX))
    if not path.is_file():
        raise ModelLoadError(
            f"{model_id}: no config with this id was picked on this machine; give the folder that holds its config.json"
        )
    kept = load_config_file(path, model_id, limit=2 * MAX_CONFIG_BYTES)  # the copy wraps the config with its name
    if not isinstance(kept, dict) or not isinstance(kept.get("config"), dict):
        raise ModelLoadError(f"{model_id}: the kept copy of its config is unreadable; give the folder again")
    spec = spec_from_config_dict(kept["config"], model_id, "local", str(kept.get("source") or ""))
    digest = config_sha256(spec)
    if not digest.startswith(model_id.removeprefix(LOCAL_ID_PREFIX)):
        raise ModelLoadError(f"{model_id}: the kept copy of its config no longer matches the id; give the folder again")
    return replace(spec, name=str(kept.get("name") or model_id), config_sha256=digest)


def _from_local_folder(name: str) -> ModelSpec:
    folder = Path(name).expanduser()
    if not folder.exists():
        raise ModelLoadError(f"{printable(name)}: no such folder")
    if not folder.is_dir():
        raise ModelLoadError(f"{printable(name)}: is a file; give the folder that holds config.json")
    config = load_config_file(folder / "config.json", name)
    resolved = folder.resolve()
    spec = spec_from_config_dict(config, name, "local", str(resolved / "config.json"))  # errors name what was given
    return local_spec(spec, config, f"{resolved.name or resolved} (local)")


def _resolve_within(host: str, port: int, timeout_s: float) -> list[tuple[Any, ...]]:
    """``getaddrinfo`` with a deadline (``TimeoutError``, an ``OSError``, past it). The C resolver takes no timeout
    and, when DNS does not answer, blocks through its own retries (11 s seen). It runs in a daemon thread, not a
    pool's, so a lookup that never answers neither holds the caller nor delays the process's exit; it ends on
    its own when the resolver gives up."""
    answer: Future = Future()

    def lookup() -> None:
        try:
            answer.set_result(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except Exception as exc:  # handed to the waiting caller
            answer.set_exception(exc)

    threading.Thread(target=lookup, name=f"resolve {host}", daemon=True).start()
    return answer.result(timeout=timeout_s)


@lru_cache(maxsize=1)
def hub_reachable(timeout_s: float = HUB_CHECK_TIMEOUT_S) -> bool:
    """Name resolution and one TCP connect, within ``timeout_s`` together, so an offline machine or one whose DNS
    does not answer says so at once instead of retrying for a minute."""
    deadline = time.monotonic() + timeout_s
    try:
        addresses = _resolve_within(HUB_HOST, 443, timeout_s)
    except OSError:
        return False
    for address in dict.fromkeys(info[4][:2] for info in addresses):  # each (ip, port) once, resolver's order
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            with socket.create_connection(address, timeout=remaining):  # a numeric address: no DNS query
                return True
        except OSError:
            continue
    return False


def _from_hub(name: str) -> ModelSpec:
    """Fetch config.json only. Offline (no network, or HF_HUB_OFFLINE=1) this fails with a clear message."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}:
        raise UnknownModelError("offline: HF_HUB_OFFLINE is set")
    if not hub_reachable():
        raise UnknownModelError(f"offline: cannot reach {HUB_HOST}")
    from huggingface_hub import hf_hub_download

    try:
        path = hf_hub_download(name, "config.json", etag_timeout=5)
    except Exception as exc:  # 404, gated, network: all mean "not available"; the reason is kept
        raise UnknownModelError(f"not found on the Hub ({type(exc).__name__})") from exc
    config = load_config_file(Path(path), name)
    return spec_from_config_dict(config, name, "hub", f"https://huggingface.co/{name}/blob/main/config.json")


def resolve(name: str) -> ModelSpec:
    """A catalog id or alias, a local folder with config.json, or (when online) a Hub id.

    A folder becomes a ``local:<hex>`` id (``local_spec``): the id every later step (the job, its worker, the
    store) resolves again, so a folder named like a catalog model (``gpt2/``) is never re-read as that model."""
    if not isinstance(name, str) or not name.strip():
        raise UnknownModelError("model: give a catalog id, an alias, a local folder or a Hub id")
    name = name.strip()
    if any(unicodedata.category(ch) in UNPRINTABLE_CATEGORIES for ch in name):
        raise UnknownModelError(
            "model: the name contains control or invisible characters; "
            "give a catalog id, a folder path or a Hub id in plain text"
        )
    if len(name) > MAX_NAME_CHARS:
        raise UnknownModelError(f"model: the name is {len(name)} characters long; the limit is {MAX_NAME_CHARS}")
    if LOCAL_ID_PATTERN.match(name):  # a folder's config, by its contents: never a catalog name or a path
        return _from_local_id(name)
    spec = catalog.find(name)
    if spec is not None:
        return spec
    if name.startswith((".", "/", "~")) or os.sep in name and Path(name).expanduser().exists():
        return _from_local_folder(name)
    if HUB_ID_PATTERN.match(name) and ".." not in name:
        try:
            return _from_hub(name)
        except UnknownModelError as exc:
            reason = str(exc)
    else:
        reason = "not a valid Hub id"
    near = catalog.closest(name)
    hint = f"closest catalog ids: {', '.join(near)}; " if near else ""
    raise UnknownModelError(
        f"unknown model {printable(name)!r} ({reason}); {hint}give a catalog id or alias (see the catalog), "
        "or a local folder that holds a config.json"
    )


def build_config(spec: ModelSpec, attn_implementation: str = "sdpa", **overrides: Any):
    """The transformers config for a spec, with its published values, never a class's defaults."""
    from transformers import AutoConfig

    values = {**spec.config, **overrides}
    try:
        config = AutoConfig.for_model(spec.model_type, **values)
    except Exception as exc:
        reason = " ".join(str(exc).split())[:300]  # one line: pydantic-style errors span several
        raise ModelLoadError(f"{spec.id}: config rejected by transformers: {reason}") from exc
    config._attn_implementation = attn_implementation
    return config


def _without_nope_head_dim(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` without a ``head_dim`` of 0 where it names the rotary part of an MLA head (GLM-5-Next's config
    class sets ``head_dim = qk_rope_head_dim``, 0 for its position-free attention; its heads are
    ``qk_nope_head_dim`` wide), in the config and its sub-configs; every other size is checked as it is."""
    out = dict(config)
    if out.get("head_dim") == 0 and out.get("qk_rope_head_dim") == 0 and out.get("qk_nope_head_dim"):
        del out["head_dim"]
    for key, value in out.items():
        if isinstance(value, dict):
            out[key] = _without_nope_head_dim(value)
    return out


def _check_depth(spec: ModelSpec, config: dict[str, Any]) -> None:
    """Refuse sizes no model has (a negative depth, a zero width) and absurdly deep stacks: even on ``meta``
    each layer costs milliseconds to build and ~0.2 s to count, so 10^4 layers would look like a hang.
    (Depth-scaled counting builds 1- and 2-layer copies and never gets here with the full depth.)"""
    problem = size_problem(_without_nope_head_dim(config), MAX_LAYERS)
    if problem:
        raise ModelLoadError(f"{spec.id}: {problem}")


def model_class(spec: ModelSpec):
    import transformers

    return {
        "base": transformers.AutoModel,
        "causal-lm": transformers.AutoModelForCausalLM,
        "seq2seq-lm": transformers.AutoModelForSeq2SeqLM,
        "image-classification": transformers.AutoModelForImageClassification,
    }[spec.task]


def build_model(
    spec: ModelSpec,
    device: str | torch.device = "meta",
    dtype: str = "float32",
    attn_implementation: str = "sdpa",
    init_weights: bool = True,
    **overrides: Any,
) -> torch.nn.Module:
    """The model in eval mode, random weights (on ``meta`` no memory is allocated at all).

    ``init_weights=False`` skips the random initialisation (transformers' ``no_init_weights``): the weights hold
    whatever memory held, for counting that only needs shapes and seconds less per conv model. Buffers computed
    in the modules' constructors (Swin's relative position index) keep their values."""
    from transformers.initialization import no_init_weights  # lazy: transformers is heavy

    config = build_config(spec, attn_implementation=attn_implementation, **overrides)
    _check_depth(spec, config.to_dict())
    try:
        with torch.device(device), no_init_weights() if not init_weights else nullcontext():
            try:
                model = model_class(spec).from_config(config, attn_implementation=attn_implementation)
            except ValueError as exc:
                if attn_implementation == "eager" or "attention implementation" not in str(exc):
                    raise
                # Some architectures (Switch) have no SDPA path: their eager attention is what runs.
                config = build_config(spec, attn_implementation="eager", **overrides)
                model = model_class(spec).from_config(config, attn_implementation="eager")
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ModelLoadError(f"{spec.id}: transformers could not build it: {type(exc).__name__}: {first}") from exc
    return model.to(DTYPE_BY_NAME[dtype]).eval()


def _config_int(spec: ModelSpec, key: str, default: int | None = None, low: int = 1) -> int:
    """A whole-number config field, or a ModelLoadError naming it (a hostile config may hold anything)."""
    value = spec.config.get(key, default)
    if isinstance(value, float) and value.is_integer():  # 1200.0 in a config written by another tool
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ModelLoadError(
            f"{spec.id}: config field {printable(key)!r} must be a whole number >= {low}, got {printable(repr(value))}"
        )
    return value


def check_workload(spec: ModelSpec, workload: Workload) -> None:
    """Refuse image sizes the model cannot take, with the rule named. (A text length beyond the model's positions
    is not refused: :func:`efficiency.models.inputs.fit_workload` caps it and says so; the limit is read here, so
    a config whose position count is not a whole number is refused.)"""
    if spec.modality == "text":
        max_positions(spec)
    else:
        if spec.model_type in {"vit", "deit"} and "patch_size" in spec.config:
            patch = _config_int(spec, "patch_size")
            if workload.image_size % patch:
                raise ModelLoadError(
                    f"{spec.id}: image_size {workload.image_size} is not a multiple of the patch size {patch}"
                )
        if spec.model_type == "swin":
            unit = _config_int(spec, "patch_size", 4) * _config_int(spec, "window_size", 7) * 8
            if workload.image_size % unit:
                raise ModelLoadError(f"{spec.id}: image_size {workload.image_size} must be a multiple of {unit}")


def max_positions(spec: ModelSpec) -> int | None:
    """The longest sequence the model's position scheme allows (None: no fixed limit, e.g. T5)."""
    for key in ("max_position_embeddings", "n_positions", "n_ctx"):
        if key in spec.config:
            limit = _config_int(spec, key)
            if spec.model_type in {"roberta", "xlm-roberta"}:
                limit -= _config_int(spec, "pad_token_id", 1, low=0) + 1
            return limit
    return None
