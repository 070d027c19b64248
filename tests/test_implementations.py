"""The implementation axis (issue 17): eager, sdpa, compile, int8, onnxruntime on tiny models.

Counts are checked against closed forms of the tiny BERT; measured runs use a few repeats (the spread rules are
those of efficiency.measure.timing, tested in test_measure). Timings measured on this 2-core machine: the
compile test takes about 10 s with a warm inductor cache and 25 s cold; the ONNX export about 6 s.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from tiny_models import tiny_bert_config

from efficiency.cli.main import main
from efficiency.measure import measure_model
from efficiency.measure.implementation_counts import LinearWork, count_linear_work, static_for
from efficiency.measure.implementations import ImplementationError, check_implementation
from efficiency.models.loading import build_model, spec_from_config_dict
from efficiency.results import IMPLEMENTATIONS, Result
from efficiency.run.job import Job, error_result
from efficiency.run.planning import plan_jobs
from efficiency.run.runner import Runner
from efficiency.specs import Workload
from efficiency.store.lookup import Wanted, matches
from efficiency.store.schema import canonical_json, env_key_subset, make_key
from efficiency.store.store import ResultStore

SEQ = 16
HIDDEN, FFN, LAYERS = 32, 64, 2  # tiny_bert_config()
WORKLOAD = Workload(batch_size=1, seq_len=SEQ)
TEXT = WORKLOAD.for_modality("text")
HERE = {"cpu_model": "Test CPU", "logical_cores": 2, "gpu": None, "torch": "2.13.0+cpu", "transformers": "5.23.0"}
# nn.Linear work of the tiny BERT at SEQ tokens: per layer q, k, v, o (d x d) and the two FFN layers (d x f), on
# every token; the pooler (d x d) on the first token only.
LINEAR_MACS = LAYERS * SEQ * (4 * HIDDEN * HIDDEN + 2 * HIDDEN * FFN) + HIDDEN * HIDDEN
LINEAR_WEIGHTS = LAYERS * (4 * HIDDEN * HIDDEN + 2 * HIDDEN * FFN) + HIDDEN * HIDDEN
# Every parameter: embeddings (512 words, 64 positions, 2 types) and their LayerNorm; per layer the six linears'
# weights and biases and two LayerNorms; the pooler.
LAYER_PARAMS = 4 * HIDDEN * HIDDEN + 2 * HIDDEN * FFN + 5 * HIDDEN + FFN + 2 * 2 * HIDDEN
TOTAL_PARAMS = (512 + 64 + 2) * HIDDEN + 2 * HIDDEN + LAYERS * LAYER_PARAMS + HIDDEN * HIDDEN + HIDDEN


@pytest.fixture(scope="module")
def spec():
    return spec_from_config_dict(tiny_bert_config(), "tiny-bert", "local", "config.json")


@pytest.fixture
def tiny_folder(tmp_path: Path) -> str:
    folder = tmp_path / "tiny-bert"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(tiny_bert_config()))
    return str(folder)


# --- the store key and the reuse rule ----------------------------------------------------------------------


def test_a_result_stored_without_an_implementation_reads_as_sdpa() -> None:
    old = Result.from_dict({"model": "bert", "workload": TEXT, "params": 1})
    assert old.implementation == "sdpa"
    assert "implementation" not in old.extra
    assert Result.from_dict(old.with_(implementation="int8").to_dict()).implementation == "int8"


def test_the_default_implementation_keeps_the_key_rows_had_before_the_axis() -> None:
    env = {"cpu_model": "Test CPU", "threads": 2, "torch": "2.13.0", "transformers": "5.23.0"}
    before = {"model": "bert", "workload": TEXT, "metrics": "all", "hardware": "local-cpu", "env": env_key_subset(env)}
    old_key = hashlib.sha256(canonical_json(before).encode()).hexdigest()
    assert make_key("bert", TEXT, "all", "local-cpu", env) == old_key
    keys = {make_key("bert", TEXT, "all", "local-cpu", env, name) for name in IMPLEMENTATIONS}
    assert len(keys) == len(IMPLEMENTATIONS)


def test_a_stored_result_stands_only_for_its_own_implementation() -> None:
    on = {"id": "local-cpu", "device": "cpu", "name": "Test CPU", "threads": 2, "environment": HERE}
    stored = Result.from_dict({"model": "bert", "workload": TEXT, "measured": True, "hardware": on})
    wanted = Wanted("bert", TEXT, measured=True, hardware="local-cpu", device="cpu", threads=2, machine=HERE)
    assert matches(stored, wanted)  # stored before implementations existed: sdpa, as every result was
    assert not matches(stored, Wanted(**{**wanted.__dict__, "implementation": "compile"}))
    assert matches(stored.with_(implementation="compile"), Wanted(**{**wanted.__dict__, "implementation": "compile"}))


def test_the_store_keeps_one_row_per_implementation(tmp_path: Path) -> None:
    fields = {"model": "bert", "workload": TEXT, "metrics": "static", "hardware": "local-cpu", "env": HERE}
    with ResultStore(str(tmp_path / "results.db")) as store:
        for name in ("sdpa", "int8", "sdpa"):
            store.put(Result(model="bert", workload=TEXT, implementation=name, params=1), fields)
        assert sorted(result.implementation for result in store.list()) == ["int8", "sdpa"]
        for name in ("sdpa", "int8"):
            found = store.lookup(Wanted("bert", TEXT, measured=False, machine=HERE, implementation=name))
            assert found is not None and found.implementation == name
        assert store.lookup(Wanted("bert", TEXT, measured=False, machine=HERE, implementation="compile")) is None


def test_jobs_carry_their_implementation_and_a_planner_makes_one_per_model_and_implementation(tiny_folder) -> None:
    with pytest.raises(ValueError, match="job implementation: 'tensorrt' is not one of eager, sdpa"):
        Job("bert", TEXT, implementation="tensorrt")
    assert error_result(Job("bert", TEXT, implementation="int8"), "boom", "crash")["implementation"] == "int8"
    plan = plan_jobs([tiny_folder, tiny_folder], WORKLOAD, implementations=["eager", "int8", "eager"])
    ((_, jobs),) = plan.jobs.items()
    assert [job.implementation for _, job in jobs] == ["eager", "int8"]
    with pytest.raises(ValueError, match="implementation 'fast' is unknown; accepted: eager, sdpa"):
        plan_jobs([tiny_folder], WORKLOAD, implementations=["fast"])


def test_an_executor_lookup_that_ignores_implementations_never_hands_over_another_ones_numbers(tmp_path) -> None:
    class NodeLookup:  # like the Ray executor: its own lookup, which finds the node's newest result for the model
        ran: list[str] = []

        def memory_available(self, job: Job) -> None:
            return None

        def find_stored(self, store: ResultStore, job: Job) -> Result:
            return Result(model=job.model, workload=TEXT, measured=True, implementation="sdpa")

        def execute(self, jobs, on_progress):
            for index, job in enumerate(jobs):
                self.ran.append(job.implementation)
                yield index, {"model": job.model, "workload": TEXT, "implementation": job.implementation}

    executor = NodeLookup()
    jobs = [Job("bert", TEXT, implementation=name) for name in ("sdpa", "int8")]
    with ResultStore(str(tmp_path / "results.db")) as store:
        results = Runner(executor, store=store).run(jobs)
    assert [(r.implementation, r.reused) for r in results] == [("sdpa", True), ("int8", None)]
    assert executor.ran == ["int8"]


# --- what each implementation accepts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "device", "dtype", "mode", "message"),
    [
        ("int8", "cpu", "bfloat16", "inference", "int8: takes float32 models (it quantizes float32 weights)"),
        ("onnxruntime", "cpu", "bfloat16", "inference", "onnxruntime: takes float32 models"),
        ("onnxruntime", "cpu", "float32", "training", "onnxruntime: measured for inference only"),
        ("compile", "cpu", "float32", "training", "compile: measured for inference only"),
        ("int8", "cuda:0", "float32", "inference", "int8: runs on the CPU only here, not on cuda:0"),
        ("tensorrt", "cpu", "float32", "inference", "implementation 'tensorrt' is unknown"),
    ],
)
def test_a_setup_an_implementation_cannot_run_is_refused_in_one_line(name, device, dtype, mode, message) -> None:
    with pytest.raises(ImplementationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_implementation(name, device, dtype, mode)


def test_bfloat16_combines_with_the_torch_implementations() -> None:
    for name in ("eager", "sdpa", "compile"):
        check_implementation(name, "cpu", "bfloat16", "inference")


# --- honest static counts ----------------------------------------------------------------------------------


def test_the_closed_forms_of_the_tiny_bert_hold(spec) -> None:
    assert TOTAL_PARAMS == sum(p.numel() for p in build_model(spec, device="meta").parameters())


def test_the_linear_work_is_counted_weight_free_and_equals_its_closed_form(spec) -> None:
    work = count_linear_work(spec, WORKLOAD)
    assert work == LinearWork(LAYERS * 6 + 1, LINEAR_WEIGHTS, LINEAR_MACS, LINEAR_WEIGHTS)


def test_int8_moves_the_linear_work_out_of_flops_and_reads_those_weights_at_one_byte() -> None:
    counted = Result(
        model="m", params=10_000, flops=1_000_000, memory_traffic_bytes=500_000, weight_bytes={"float32": 40_000}
    )
    work = LinearWork(layers=3, weight_elements=6_000, macs=400_000, weight_reads=6_000)
    int8 = static_for(counted, "int8", work)
    assert (int8.int8_ops, int8.flops, int8.macs) == (800_000, 200_000, 100_000)
    assert int8.flops + int8.int8_ops == counted.flops
    assert int8.memory_traffic_bytes == 500_000 - 3 * 6_000
    assert int8.weight_bytes == {"float32": 40_000, "int8_dynamic": 4 * 4_000 + 6_000}
    assert int8.arithmetic_intensity_flops_per_byte == pytest.approx(200_000 / 482_000)
    assert "80% of the forward work runs as int8 operations" in int8.notes[-1]
    assert "60% of the parameters" in int8.notes[-1]
    with pytest.raises(ImplementationError, match="int8: m has no nn.Linear layer"):
        static_for(counted, "int8", LinearWork(0, 0, 0, 0))


def test_the_static_json_holds_identical_params_and_flops_across_float_implementations(
    tiny_folder, data_dir, capsys
) -> None:
    status = main(
        ["profile", tiny_folder, "--seq-len", str(SEQ), "--implementation", ",".join(IMPLEMENTATIONS), "--json"]
    )
    rows = json.loads(capsys.readouterr().out)
    assert status == 0
    assert [row["implementation"] for row in rows] == list(IMPLEMENTATIONS)
    floats = [row for row in rows if row["implementation"] != "int8"]
    counted = ("params", "flops", "macs", "flops_by_counter", "training_flops", "memory_traffic_bytes")
    for key in counted:
        assert len({json.dumps(row[key]) for row in floats}) == 1, key
    (int8,) = [row for row in rows if row["implementation"] == "int8"]
    assert int8["int8_ops"] == 2 * LINEAR_MACS
    assert int8["flops"] + int8["int8_ops"] == floats[0]["flops"]
    assert all("the same under eager, sdpa, compile and onnxruntime" in row["notes"][-1] for row in floats[::2])


def test_an_implementation_that_refuses_a_setup_fails_alone(tiny_folder, data_dir, capsys) -> None:
    args = ["profile", tiny_folder, "--seq-len", str(SEQ), "--dtype", "bfloat16", "--json"]
    status = main([*args, "--implementation", "sdpa,int8,onnxruntime"])
    rows = json.loads(capsys.readouterr().out)
    assert status == 1
    assert [(row["implementation"], row["error"]) for row in rows] == [
        ("sdpa", None),
        ("int8", "int8: takes float32 models (it quantizes float32 weights), not bfloat16"),
        ("onnxruntime", "onnxruntime: takes float32 models (its CPU kernels are float32 here), not bfloat16"),
    ]


def test_an_unknown_implementation_is_a_usage_error(tiny_folder, capsys) -> None:
    assert main(["profile", tiny_folder, "--implementation", "sdpa,tensorrt"]) == 2
    assert "'tensorrt' is not one of eager, sdpa, compile, int8, onnxruntime" in capsys.readouterr().err


# --- measured --------------------------------------------------------------------------------------------------


def measured(spec, name: str) -> dict:
    return measure_model(spec, WORKLOAD, threads=1, repeats=3, min_time_s=0.02, implementation=name)


def test_int8_runs_quantized_linears_and_its_weights_are_what_it_holds(spec) -> None:
    result = measured(spec, "int8")
    assert result["implementation"] == "int8" and result["latency_ms"]["n"] >= 3
    assert result["setup_s"]["quantize"] > 0
    # the linear weights at 1 byte; every other parameter (biases included) stays at 4
    assert result["memory_breakdown"]["weights_bytes"] == 4 * (TOTAL_PARAMS - LINEAR_WEIGHTS) + LINEAR_WEIGHTS
    assert "13 nn.Linear layers quantized dynamically" in result["notes"][0]


def test_onnxruntime_times_the_session_with_the_export_apart(spec) -> None:
    result = measured(spec, "onnxruntime")
    assert set(result["setup_s"]) == {"export", "session"}
    assert result["latency_ms"]["n"] >= 3 and result["latency_ms"]["median"] > 0
    assert result["memory_breakdown"]["sources"]["weights_bytes"] == "counted (the exported model's initializers)"
    assert 0.9 * 4 * TOTAL_PARAMS < result["memory_breakdown"]["weights_bytes"] <= 4 * TOTAL_PARAMS


def test_compile_times_its_first_call_apart_from_the_steady_state(spec) -> None:
    result = measured(spec, "compile")
    compile_s, latency = result["setup_s"]["compile"], result["latency_ms"]
    assert latency["n"] >= 3
    assert compile_s > latency["p90"] / 1e3  # the first call compiles: longer than any timed call
    assert result["memory_breakdown"]["weights_bytes"] == 4 * TOTAL_PARAMS


def test_the_cli_measures_one_result_per_model_and_implementation_and_reuses_each(
    tiny_folder, data_dir, capsys
) -> None:
    args = ["profile", tiny_folder, "--seq-len", str(SEQ), "--metrics", "all", "--threads", "1", "--repeats", "3"]
    args += ["--implementation", "eager,int8", "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert [(row["implementation"], row["measured"], row.get("reused")) for row in first] == [
        ("eager", True, None),
        ("int8", True, None),
    ]
    assert "achieved_flops_per_s" in first[0]
    assert "int8_ops" in first[1] and "achieved_flops_per_s" not in first[1]
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert [(row["implementation"], row.get("reused")) for row in again] == [("eager", True), ("int8", True)]
    assert [row["latency_ms"] for row in again] == [row["latency_ms"] for row in first]
