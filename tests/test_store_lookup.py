"""efficiency.store.lookup: the one rule for which stored result stands for a setup."""

from __future__ import annotations

from dataclasses import replace

from efficiency.results import Result
from efficiency.store.lookup import Wanted, matches, release, same_workload

TEXT = {"batch_size": 1, "seq_len": 128, "dtype": "float32", "mode": "inference"}
VIEW = {**TEXT, "image_size": 224}  # what a page asks with: every field, whatever the modality
HERE = {"cpu_model": "Test CPU", "logical_cores": 2, "gpu": None, "torch": "2.13.0+cpu", "transformers": "5.23.0"}


def measured(**hardware: object) -> Result:
    env = {**HERE, **hardware.pop("environment", {})}
    on = {"id": "local-cpu", "device": "cpu", "name": "Test CPU", "threads": 2, "environment": env, **hardware}
    return Result.from_dict({"model": "bert", "workload": TEXT, "measured": True, "hardware": on})


LOCAL = Wanted("bert", VIEW, measured=True, hardware="local-cpu", device="cpu", threads=2, machine=HERE)


def test_a_result_measured_here_at_this_setup_matches() -> None:
    assert matches(measured(), LOCAL)
    assert matches(measured(), replace(LOCAL, threads=None))  # any thread count when none is asked


def test_model_kind_workload_and_failure_each_rule_a_result_out() -> None:
    assert not matches(measured(), replace(LOCAL, model="gpt2"))
    assert not matches(measured(), replace(LOCAL, measured=False))
    assert not matches(measured(), replace(LOCAL, workload={**VIEW, "batch_size": 8}))
    assert not matches(measured().with_(error="boom"), LOCAL)


def test_another_machines_local_cpu_result_is_not_this_machines() -> None:
    assert not matches(measured(environment={"cpu_model": "Other CPU"}), LOCAL)
    assert not matches(measured(environment={"logical_cores": 64}), LOCAL)
    assert not matches(measured(threads=1), LOCAL)
    assert not matches(measured(device="cuda:0"), LOCAL)


def test_software_releases_must_agree_but_a_local_build_tag_does_not_matter() -> None:
    assert release("2.13.0+cu126") == "2.13.0"
    assert matches(measured(environment={"torch": "2.13.0+cu126"}), LOCAL)
    assert not matches(measured(environment={"torch": "2.12.1"}), LOCAL)
    assert matches(measured(environment={"torch": None}), LOCAL)  # unknown: not held against it


def test_cluster_hardware_is_matched_by_its_id_on_any_node() -> None:
    node = measured(id="cuda-a100", device="cuda", environment={"cpu_model": "Node CPU", "gpu": "A100"})
    on_cluster = Wanted("bert", VIEW, measured=True, hardware="cuda-a100", machine=HERE)
    assert matches(node, on_cluster)
    assert not matches(node, replace(on_cluster, hardware="cuda-t4"))


def test_a_static_count_matches_any_machine_and_never_stands_for_a_measurement() -> None:
    static = Result.from_dict({"model": "bert", "workload": TEXT, "params": 1})
    assert matches(static, Wanted("bert", VIEW, measured=False, machine=HERE))
    assert not matches(static, LOCAL)


def test_the_workload_a_result_used_must_be_the_wanted_one_field_for_field() -> None:
    assert same_workload(TEXT, VIEW)  # the view also names an image size; a text model has none
    assert same_workload(TEXT, TEXT)
    assert not same_workload({**TEXT, "num_frames": 16}, VIEW)  # a field the view does not have
    assert not same_workload(TEXT, {**VIEW, "num_frames": 16})  # a field the result did not use
    assert same_workload(TEXT, {**VIEW, "audio_seconds": 10.0})  # a clip length is another modality's shape
    assert not same_workload({**TEXT, "audio_seconds": 5.0}, {**VIEW, "audio_seconds": 10.0})
    assert not same_workload({}, VIEW)
