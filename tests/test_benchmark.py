"""benchmark.py: the same training work on both sides, case planning, ratios, table, JSON lines and plot."""
import json
import os
import subprocess
import sys
import time

import pytest

from mszoo.config import ConfigError
from mszoo.tools import benchmark

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _args(**overrides):
    argv = []
    for key, value in overrides.items():
        argv += [f"--{key}", str(value)]
    return benchmark.build_parser().parse_args(argv)


def test_our_train_case_does_the_work_of_the_timm_case():
    from mszoo.models.layers import DropPath

    cfg, model = benchmark.train_setup(dict(model="t2t_vit_7", image_size=224, batch_size=8))
    assert cfg.optimizer == "adamw"
    for key, value in benchmark.TRAIN.items():
        assert cfg[key] == value, key
    rates = [cell.drop_prob for _, cell in model.cells_and_names() if isinstance(cell, DropPath)]
    assert rates and max(rates) == pytest.approx(benchmark.TRAIN["drop_path_rate"])


def test_plan_adds_timm_cases_only_for_models_timm_has():
    cases = benchmark.plan_cases(_args(model="twins_svt_small,t2t_vit_7", mode="infer,train", batch_size="1,8",
                                       backend="mindspore,onnx", compare="timm"))
    timm = {(c["mode"], c["model"], c["batch_size"]) for c in cases if c["impl"] == "timm"}
    assert timm == {(m, "twins_svt_small", b) for m in ("infer", "train") for b in (1, 8)}
    ours = [c for c in cases if c["impl"] == "ours"]
    assert len(ours) == 2 * 2 * 2 + 2 * 2  # infer: 2 models x 2 batches x 2 backends; train: 2 x 2
    assert {c["backend"] for c in ours if c["mode"] == "train"} == {"mindspore"}


def test_isa_measures_our_train_case_under_each_onednn_cap_against_one_timm_case(monkeypatch, graph_mode):
    cases = benchmark.plan_cases(_args(model="twins_svt_small", mode="train", batch_size="8", compare="timm",
                                       isa="auto,AVX2"))
    assert sorted((c["impl"], c.get("isa")) for c in cases) == [("ours", "AVX2"), ("ours", "auto"), ("timm", None)]
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    benchmark._ms_setup(1, cpu_kernels=False, isa="AVX2")  # the case process sets the cap before MindSpore runs
    assert os.environ["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    rows = [dict(mode="train", model="m", impl="ours", backend="mindspore", batch_size=8, isa="AVX2",
                 result=dict(images_per_s=1.0, step_ms=1.0, first_step_s=1.0, peak_rss_mb=1.0, params=1))]
    assert "ours@AVX2" in benchmark.format_table(rows)


@pytest.mark.parametrize("overrides, key", [(dict(mode="infer,fly"), "--mode"),
                                            (dict(backend="tensorrt"), "--backend"),
                                            (dict(batch_size="0"), "--batch_size"),
                                            (dict(compare="mmcv"), "--compare")])
def test_plan_rejects_bad_choices_naming_the_flag(overrides, key):
    with pytest.raises(ConfigError, match=key):
        benchmark.plan_cases(_args(**overrides))


def test_data_cases_run_per_worker_count_and_pair_with_timm_at_the_same_count():
    args = benchmark.build_parser().parse_args(["--mode", "data", "--batch_size", "64", "--workers", "1,2",
                                                "--compare", "timm", "--profile"])
    cases = benchmark.plan_cases(args)
    assert [(c["impl"], c["workers"]) for c in cases] == [("ours", 1), ("timm", 1), ("ours", 2), ("timm", 2)]
    assert all(c["profile"] for c in cases)
    rows = [dict(c, result=dict(images_per_s=rate, step_ms=1.0, first_step_s=1.0, peak_rss_mb=1.0))
            for c, rate in zip(cases, (100.0, 50.0, 150.0, 300.0))]
    benchmark.add_ratios(rows)
    assert [r.get("ratio") for r in rows] == [2.0, None, 0.5, None]
    with pytest.raises(ConfigError, match="--workers"):
        benchmark.plan_cases(_args(mode="data", workers="0"))


def test_data_summary_gives_the_second_workers_gain_and_the_cores_a_job_needs():
    from mszoo.tools.data_profile import STAGES, scaling_lines, stage_lines

    def row(workers, rate, cpu_ms, main_ms, stages=None):
        result = dict(images_per_s=rate, cpu_ms=cpu_ms, main_cpu_ms=main_ms)
        if stages:
            result["stages"] = stages
        return dict(mode="data", impl="ours", batch_size=64, workers=workers, result=result)

    stages = dict({name: 1.0 for name in STAGES}, total=7.0)
    rows = [row(1, 100.0, 8.0, 8.0, stages), row(2, 180.0, 7.5, 0.25)]
    lines = scaling_lines(rows, feed=4000, devices=8)
    assert "1 worker 100 img/s (100 per worker), 2 workers 180 img/s (90 per worker); worker 2 adds 80 %" in lines[0]
    assert "caps one loader at 4000 img/s" in lines[1] and "about 30 cores" in lines[1]  # 4000 x 7.5 ms
    table = stage_lines(rows)
    assert table[0].split() == ["stage", "(ms", "per", "image,", "one", "core)", "ours", "b64"]
    assert len(table) == 1 + len(STAGES) + 1 + 1 and table[-1].split()[-1] == "0.250"  # main process at 2 workers


def _burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_cpu_meter_counts_workers_that_end_without_being_waited_for():
    import multiprocessing

    import psutil

    from mszoo.tools.data_profile import CpuMeter

    with CpuMeter(interval=0.02) as cpu:
        worker = multiprocessing.get_context("fork").Process(target=_burn, args=(0.3,))
        worker.start()
        _burn(0.1)
        child = psutil.Process(worker.pid)
        while child.status() != psutil.STATUS_ZOMBIE:  # ended, not waited for (is_alive() would reap it)
            time.sleep(0.01)
    worker.join()
    assert 0.25 <= cpu.children <= 0.4 and 0.08 <= cpu.own <= 0.3


def _row(impl, rate, mode="train", model="m", batch=8, error=None):
    result = dict(error=error) if error else dict(images_per_s=rate, step_ms=1e3 * batch / rate, first_step_s=1.0,
                                                  peak_rss_mb=100.0, params=10)
    return dict(mode=mode, model=model, impl=impl, backend="x", batch_size=batch, result=result)


def test_ratio_is_ours_over_timm_of_the_same_mode_model_and_batch():
    rows = benchmark.add_ratios([_row("ours", 3.0), _row("timm", 4.0), _row("ours", 9.0, batch=1),
                                 _row("ours", 2.0, model="n"), _row("timm", 1.0, model="n", error="boom")])
    assert rows[0]["ratio"] == pytest.approx(0.75)
    assert "ratio" not in rows[2] and "ratio" not in rows[3]  # no timm row / the timm row failed
    table = benchmark.format_table(rows)
    assert "0.75x" in table and "error: boom" in table


def test_rounds_merge_to_medians_and_ratios_pair_round_with_round():
    ours = [_row("ours", rate)["result"] for rate in (3.0, 1.0, 3.3)]
    timm = [_row("timm", rate)["result"] for rate in (2.0, 0.5, 3.0)]  # round 2 slow for both: a slow spell
    merged = benchmark.merge_rounds(ours)
    assert merged["images_per_s"] == 3.0 and merged["rounds"] == [3.0, 1.0, 3.3]
    rows = benchmark.add_ratios([dict(_row("ours", 1.0), result=merged),
                                 dict(_row("timm", 1.0), result=benchmark.merge_rounds(timm))])
    assert rows[0]["ratio"] == pytest.approx(1.5)  # median of 1.5, 2.0, 1.1 (the medians' ratio would be 1.5 too)
    assert rows[0]["ratio_range"] == pytest.approx([1.1, 2.0])
    assert "1.50x (1.10-2.00)" in benchmark.format_table(rows)
    failed = benchmark.merge_rounds([ours[0], dict(error="boom")])
    assert failed == dict(error="boom")


def test_repeat_runs_every_case_once_per_round_taking_turns(monkeypatch, capsys):
    calls = []

    def fake_run_case(case, timeout):
        calls.append(case["impl"])
        return _row(case["impl"], 4.0 if case["impl"] == "ours" else 2.0)["result"]

    monkeypatch.setattr(benchmark, "run_case", fake_run_case)
    assert benchmark.main(["--model", "twins_svt_small", "--mode", "infer", "--batch_size", "8",
                                     "--backend", "mindspore", "--compare", "timm", "--repeat", "3"]) == 0
    assert calls == ["ours", "timm"] * 3
    assert "2.00x (2.00-2.00)" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="--repeat"):
        benchmark.plan_cases(_args(repeat=0))


def test_cli_runs_cases_in_subprocesses_and_writes_json_lines_and_a_plot(tmp_path):
    out, png = tmp_path / "bench.jsonl", tmp_path / "bench.png"
    proc = subprocess.run([sys.executable, "benchmark.py", "--mode", "data", "--batch_size", "4", "--compare",
                           "timm", "--image_size", "64", "--windows", "1", "--workers", "1", "--json", str(out),
                           "--plot", str(png)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, GLOG_v="3"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["impl"] for r in rows] == ["ours", "timm"]
    assert all(r["result"]["images_per_s"] > 0 and r["result"]["peak_rss_mb"] > 0 for r in rows)
    assert rows[0]["ratio"] == pytest.approx(rows[0]["result"]["images_per_s"] / rows[1]["result"]["images_per_s"])
    assert "vs timm" in proc.stdout and png.stat().st_size > 0


def _tiny_case(mode, backend="mindspore", model="twins_pcpvt_small"):
    return dict(mode=mode, impl="ours", model=model, backend=backend, batch_size=2, image_size=32, threads=1,
                warmup=1, windows=2, iters=2, workers=1)


@pytest.fixture
def tiny_benchmark_models(monkeypatch, graph_mode):
    """benchmark's model builders give the tiny width of the same family (compile cost, not the point here). A case
    run inline switches MindSpore to graph mode, as its own process would; ``graph_mode`` puts PyNative back."""
    import mszoo.resolve
    from mszoo.models import create_model
    from tests.tiny import tiny_kwargs

    built, initial = [], {}

    def tiny_model(name, size, num_classes=1000):
        model = create_model(name, num_classes=num_classes, **dict(tiny_kwargs(name), img_size=size))
        built.append(model)
        return model

    real_build = mszoo.resolve.build_model

    def tiny_build(cfg, **kw):
        cfg.model_kwargs = {k: v for k, v in tiny_kwargs(cfg.arch).items() if k != "img_size"}
        model = real_build(cfg, **kw)
        built.append(model)
        initial.update({p.name: p.asnumpy().copy() for p in model.get_parameters()})
        return model

    monkeypatch.setattr(benchmark, "_our_model", tiny_model)
    monkeypatch.setattr(mszoo.resolve, "build_model", tiny_build)
    yield built, initial
    import mindspore as ms

    ms.set_context(mode=ms.PYNATIVE_MODE)  # the cases set GRAPH mode, as in their own process


@pytest.mark.parametrize("backend", ["mindspore", "onnx"])
def test_infer_case_measures_a_tiny_model(backend, tiny_benchmark_models):
    result = benchmark.run_case_inline(_tiny_case("infer", backend))
    (model,), _ = tiny_benchmark_models
    assert result["params"] == benchmark._count(model)
    assert result["images_per_s"] > 0 and result["first_step_s"] > 0 and result["peak_rss_mb"] > 0
    # one measurement: images/s is the batch over the step time (two windows whose times differ widely, as on a
    # busy machine, once put the median of their rates 1.8x away from the median of their times)
    assert result["step_ms"] == pytest.approx(1e3 * 2 / result["images_per_s"], rel=1e-9)


def test_train_case_trains_a_tiny_model(tiny_benchmark_models):
    import numpy as np

    result = benchmark.run_case_inline(_tiny_case("train"))
    (model,), initial = tiny_benchmark_models
    assert result["params"] == benchmark._count(model)
    assert result["images_per_s"] > 0 and result["first_step_s"] > 0
    # The timed steps were optimizer steps: the weights moved from the ones the model was built with.
    moved = [p.name for p in model.trainable_params() if not np.array_equal(p.asnumpy(), initial[p.name])]
    assert len(moved) > len(initial) // 2, moved


def test_infer_e2e_plans_first_and_second_call_the_old_default_and_timm():
    cases = benchmark.plan_cases(_args(model="twins_pcpvt_small", mode="infer_e2e", batch_size="8",
                                       backend="mindspore,onnx", compare="timm", images=16))
    assert [(c["impl"], c.get("call")) for c in cases] == [("ours", "first"), ("ours", "second"),
                                                           ("ours", "mindspore"), ("timm", None)]
    assert {c["images"] for c in cases} == {16} and {c["batch_size"] for c in cases} == {8}


def test_e2e_summary_gives_seconds_over_timm_ratio_and_both_peaks():
    rows = []
    for impl, call, wall in (("ours", "first", 40.0), ("ours", "second", 8.0), ("timm", None, 16.0)):
        result = dict(images_per_s=16 / wall, step_ms=1.0, first_step_s=wall, peak_rss_mb=400.0, child_rss_mb=900.0)
        rows.append(dict(mode="infer_e2e", model="m", impl=impl, backend="x", call=call, batch_size=8, result=result))
    lines = benchmark.e2e_summary(benchmark.add_ratios(rows))
    assert len(lines) == 2
    assert "first: 40.0 s against timm's 16.0 s (+24.0 s, 0.40x)" in lines[0] and "900 MB" in lines[0]
    assert "second: 8.0 s against timm's 16.0 s (-8.0 s, 2.00x)" in lines[1]


def test_a_case_reads_its_own_peak_rss_not_the_spawning_process_peak():
    ballast = bytearray(600 * 2 ** 20)  # this process's peak now exceeds 600 MB
    ballast[::4096] = b"\1" * len(ballast[::4096])
    code = "from mszoo.tools.benchmark import _peak_rss_mb; print(_peak_rss_mb())"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    del ballast
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip()) < 400  # getrusage's ru_maxrss says >= 600 here
