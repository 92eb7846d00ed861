"""benchmark.py: images/s for inference, training and the data pipeline, side by side with timm.

Every measured case runs in its own subprocess (``python -m mszoo.tools.benchmark --case JSON``) so its peak
RSS and its compile time are its own. A case reports: images/s (median over timed windows after
warm-up), step time, first-step (compile) time, peak RSS and parameter count. ``--compare timm`` runs
the timm model of the same name (PyTorch eager, same thread count) in the same run and prints ratios.
``--repeat N`` runs every case N times in rounds, ours and timm taking turns, and reports each ratio as the
median of the rounds' ratios with their spread: on a shared machine that is the number to quote.
``--isa auto,AVX2`` measures our MindSpore cases under each oneDNN instruction-set cap (``auto``: the one
``mszoo.cpu.onednn`` chooses for this CPU), in the same run: how the cap was decided per CPU.

``--mode infer_e2e`` times what a user waits for: ``infer.py --pretrained X --input FOLDER`` as a whole (imports,
decode, preprocess, model, JSON) on a folder of generated JPEGs (``--images``, 512), its first call (an empty IR
cache: the export included) and its second, against a timm script doing the same (``create_transform`` and
inference at the same batch size). ``--backend`` adds a call with that backend (``mindspore``: the old default).

``--mode data`` measures the training input pipeline at each ``--workers`` count, with the CPU per image of the
main process and of all processes, then prints images/s per worker and the cores ``--feed`` images/s take;
``--profile`` adds each stage's milliseconds per image (``mszoo/tools/data_profile.py``).
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from mszoo.cli import console

MODES = ("infer", "train", "data", "infer_e2e")
BACKENDS = ("mindspore", "mindir", "onnx", "openvino")
# What both training cases do per step besides AdamW, in one place (keys are our config keys).
TRAIN = dict(drop_path_rate=0.1, weight_decay=0.05, label_smoothing=0.1, clip_grad_norm=5.0)


# ------------------------------------------------------------------------------------------ measuring

def _peak_rss_mb():
    """This process's own peak RSS: ``VmHWM`` of its memory map. Not ``getrusage``: Linux starts an exec'd
    process's ``ru_maxrss`` at the peak of the process that spawned it (the map it replaced; Python spawns with
    vfork), so every case read at least this tool's own peak (1.4 GB with timm and MindSpore imported)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_windows(step, batch, warmup, windows, iters_per_window):
    """Run ``step()`` ``warmup`` times, then time ``windows`` windows; returns (first s, img/s, step s), both from
    the median window's step time (with an even count a median of rates and one of times would disagree)."""
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    for _ in range(max(warmup - 1, 0)):
        step()
    step_times = []
    for _ in range(windows):
        t0 = time.perf_counter()
        for _ in range(iters_per_window):
            step()
        step_times.append((time.perf_counter() - t0) / iters_per_window)
    step_s = statistics.median(step_times)
    return first, batch / step_s, step_s


def _input(batch, size):
    return np.random.RandomState(0).randn(batch, 3, size, size).astype(np.float32)


def _ms_setup(threads, cpu_kernels=True, isa="auto", fused_kernels=False):
    os.environ.setdefault("GLOG_v", "3")
    if isa != "auto":  # before MindSpore's first oneDNN kernel reads it
        os.environ["ONEDNN_MAX_CPU_ISA"] = isa
    import mindspore as ms

    from mszoo.cpu.launch import set_cpu_device

    # no oneDNN cap for OpenVINO: it reads the same variable and would lose AVX-512 and bf16
    set_cpu_device(cap_onednn=cpu_kernels, fused_kernels=fused_kernels)
    ms.set_context(mode=ms.GRAPH_MODE)
    return ms


def _our_model(name, size, num_classes=1000):
    from mszoo.models import create_model

    return create_model(name, num_classes=num_classes, img_size=size)


def _count(model):
    return int(sum(int(np.prod(p.shape)) for p in model.get_parameters()))


def case_infer_ours(case):
    ms = _ms_setup(case["threads"], cpu_kernels=case["backend"] != "openvino",
                   fused_kernels=case["backend"] == "mindspore")
    from mszoo.config import parse_config
    from mszoo.deploy.export import export_to_file

    model = _our_model(case["model"], case["image_size"])
    model.set_train(False)
    params = _count(model)
    x_np = _input(case["batch_size"], case["image_size"])
    backend = case["backend"]
    tmp = tempfile.mkdtemp(prefix="bench_")
    try:
        if backend == "mindspore":
            from mszoo.cpu.kernels import use_fused_kernels

            use_fused_kernels(model)  # as eval.py and infer.py run it
            x = ms.Tensor(x_np)
            step = lambda: model(x).asnumpy()
        else:
            cfg, _ = parse_config(["--arch", case["model"], "--image_size", str(case["image_size"])])
            fmt = "MINDIR" if backend == "mindir" else "ONNX"
            path = export_to_file(model, cfg, fmt, os.path.join(tmp, f"m.{fmt.lower()}"))
            if backend == "openvino":
                run = _openvino_runner(path, case, x_np)
                step = lambda: run(x_np)
            elif backend == "mindir":
                graph = ms.nn.GraphCell(ms.load(path))
                x = ms.Tensor(x_np)
                step = lambda: graph(x).asnumpy()
            else:
                import onnxruntime as ort

                opts = ort.SessionOptions()
                opts.intra_op_num_threads = case["threads"]
                sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
                name = sess.get_inputs()[0].name
                step = lambda: sess.run(None, {name: x_np})
        first, rate, step_s = time_windows(step, case["batch_size"], case["warmup"], case["windows"], case["iters"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dict(images_per_s=rate, step_ms=step_s * 1e3, first_step_s=first, params=params)


def _openvino_runner(path, case, x_np):
    """The exported model compiled by OpenVINO at the case's precision. int8 is quantized (NNCF) with
    calibration batches of the benchmark's own random input: right for timing (int8 kernels run whatever the
    values), not for accuracy, which eval.py --precision int8 --calib_data measures."""
    from mszoo.deploy.ov_runtime import compile_model, quantize_int8

    model = path
    if case["precision"] == "int8":
        model, _ = quantize_int8(path, [x_np] * 4)
    return compile_model(model, case["precision"], threads=case["threads"])


def train_setup(case):
    """Config and model of our train case: AdamW (the default optimizer) plus ``TRAIN`` as in the timm case,
    the model built by the trainer's builder (so with the configured drop path)."""
    from mszoo.config import parse_config
    from mszoo.resolve import build_model

    cfg, _ = parse_config(["--arch", case["model"], "--image_size", str(case["image_size"]),
                           "--batch_size", str(case["batch_size"]),
                           "--grad_checkpointing", str(bool(case.get("grad_checkpointing", False))).lower(),
                           *(arg for key, value in TRAIN.items() for arg in (f"--{key}", str(value)))])
    return cfg, build_model(cfg)


def case_train_ours(case):
    ms = _ms_setup(case["threads"], isa=case.get("isa", "auto"), fused_kernels=True)
    from mszoo.engine.criterion import create_criterion
    from mszoo.engine.optim import create_optimizer
    from mszoo.engine.train_step import build_train_step

    cfg, model = train_setup(case)
    model.set_train(True)
    params = _count(model)
    no_decay = model.no_weight_decay() if hasattr(model, "no_weight_decay") else ()
    optimizer = create_optimizer(cfg, model.trainable_params(), no_weight_decay=no_decay)
    step_cell = build_train_step(model, create_criterion(cfg), optimizer, cfg, group_size=1)
    x = ms.Tensor(_input(case["batch_size"], case["image_size"]))
    y = ms.Tensor(np.arange(case["batch_size"], dtype=np.int32) % 1000)
    lr = ms.Tensor(np.float32(1e-4))
    step = lambda: step_cell.run([(x, y)], lr)  # the trainer's call: compiles, then releases the freed heap
    first, rate, step_s = time_windows(step, case["batch_size"], case["warmup"], case["windows"], case["iters"])
    return dict(images_per_s=rate, step_ms=step_s * 1e3, first_step_s=first, params=params)


def _torch_setup(threads):
    import torch

    torch.set_num_threads(threads)
    return torch


def case_infer_timm(case):
    torch = _torch_setup(case["threads"])
    import timm

    model = timm.create_model(case["model"], pretrained=False, img_size=case["image_size"]).eval()
    x = torch.from_numpy(_input(case["batch_size"], case["image_size"]))
    bf16 = case.get("precision") == "bf16"  # like with like: timm under torch.autocast(bfloat16)

    def step():
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model(x)

    first, rate, step_s = time_windows(step, case["batch_size"], case["warmup"], case["windows"], case["iters"])
    return dict(images_per_s=rate, step_ms=step_s * 1e3, first_step_s=first,
                params=int(sum(p.numel() for p in model.parameters())))


def case_train_timm(case):
    torch = _torch_setup(case["threads"])
    import timm

    model = timm.create_model(case["model"], pretrained=False, img_size=case["image_size"],
                              drop_path_rate=TRAIN["drop_path_rate"]).train()
    checkpointed = False
    if case.get("grad_checkpointing"):
        try:  # timm's Twins has no checkpointing (asserts): it then runs without, and the row says so
            model.set_grad_checkpointing(True)
            checkpointed = True
        except (AssertionError, NotImplementedError):
            pass
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=TRAIN["weight_decay"])
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=TRAIN["label_smoothing"])
    x = torch.from_numpy(_input(case["batch_size"], case["image_size"]))
    y = torch.arange(case["batch_size"]) % 1000

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), TRAIN["clip_grad_norm"])
        opt.step()
        loss.item()

    first, rate, step_s = time_windows(step, case["batch_size"], case["warmup"], case["windows"], case["iters"])
    return dict(images_per_s=rate, step_ms=step_s * 1e3, first_step_s=first,
                params=int(sum(p.numel() for p in model.parameters())), grad_checkpointing=checkpointed)


def make_jpeg_folder(root, n=128, classes=4, size=(375, 500), seed=0, distinct=1024):
    """An ImageFolder of ``n`` random JPEGs (ImageNet-like sizes) for the data-pipeline benchmark; past
    ``distinct`` images, files are hard links to earlier ones (each is decoded and augmented anew)."""
    from PIL import Image

    rng = np.random.RandomState(seed)
    for i in range(n):
        folder = os.path.join(root, f"class_{i % classes}")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{i}.jpg")
        if i >= distinct:
            os.link(os.path.join(root, f"class_{i % distinct % classes}", f"{i % distinct}.jpg"), path)
            continue
        arr = (rng.rand(size[0] // 8, size[1] // 8, 3) * 255).astype(np.uint8)
        Image.fromarray(arr).resize((size[1], size[0]), Image.BILINEAR).save(path, quality=90)
    return root


DATA_AUG = dict(auto_augment="rand-m9-mstd0.5-inc1", re_prob=0.25, re_mode="pixel")


def case_data_ours(case):
    _ms_setup(case["threads"])
    from mszoo.data import create_dataset

    ds = create_dataset(split="train", split_dir=case["folder"], is_training=True, batch_size=case["batch_size"],
                        image_size=case["image_size"], num_parallel_workers=case["workers"], **DATA_AUG)
    result = _time_iterator(lambda: ds.create_tuple_iterator(num_epochs=1, output_numpy=True), case)
    return _with_profile(result, case)


def case_data_timm(case):
    torch = _torch_setup(case["threads"])
    from timm.data import create_transform
    from torchvision.datasets import ImageFolder

    tf = create_transform(case["image_size"], is_training=True, interpolation="bicubic", **DATA_AUG)
    loader = torch.utils.data.DataLoader(ImageFolder(case["folder"], transform=tf), batch_size=case["batch_size"],
                                         shuffle=True, num_workers=case["workers"], drop_last=True)
    return _with_profile(_time_iterator(lambda: iter(loader), case), case)


def _with_profile(result, case):
    """``result`` plus, with ``--profile``, the per-stage milliseconds per image (``stages``)."""
    if case.get("profile"):
        from mszoo.tools.data_profile import stage_profile

        result["stages"] = stage_profile(case["impl"], case["folder"], case["image_size"], DATA_AUG,
                                         case["batch_size"])
    return result


def _timed_epoch(iterator):
    """``(images, seconds)`` of one epoch of ``iterator``; then its workers are stopped (untimed)."""
    t0, n = time.perf_counter(), 0
    for batch in iterator:
        n += len(batch[0])
    seconds = time.perf_counter() - t0
    stop = getattr(iterator, "stop", None)
    if stop is not None:
        stop()
    return n, seconds


def _time_iterator(make_iter, case):
    """Images/s over whole epochs (after one warm-up epoch that starts the workers), and the CPU each image took
    in the main process and in all processes (``main_cpu_ms``, ``cpu_ms``)."""
    from mszoo.tools.data_profile import CpuMeter

    t0 = time.perf_counter()
    first_batch = None
    for _ in make_iter():
        if first_batch is None:
            first_batch = time.perf_counter() - t0
    rates, images = [], 0
    with CpuMeter() as cpu:
        for _ in range(case["windows"]):
            n, seconds = _timed_epoch(make_iter())
            rates.append(n / seconds)
            images += n
    return dict(images_per_s=statistics.median(rates), step_ms=1e3 * case["batch_size"] / statistics.median(rates),
                first_step_s=first_batch, params=None, main_cpu_ms=1e3 * cpu.own / images,
                cpu_ms=1e3 * (cpu.own + cpu.children) / images)


# ------------------------------------------------------------------------------------------ end to end

def _e2e_timed(run, case):
    """Wall time of ``run()`` (imports included: they are part of what a user waits for) as a case result, with
    the peak RSS of this process's children (an export that ran in one) beside this process's own."""
    t0 = time.perf_counter()
    params = run()
    wall = time.perf_counter() - t0
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return dict(images_per_s=case["images"] / wall, step_ms=1e3 * wall / case["images"], first_step_s=wall,
                params=params, child_rss_mb=children)


def case_e2e_ours(case):
    """infer.py on the folder, as a user runs it (``case["call"]``: ``first`` starts from an empty IR cache)."""
    cache = os.path.join(case["folder"], "..", "ir_cache")
    if case["call"] == "first":
        shutil.rmtree(cache, ignore_errors=True)
    os.environ["MSZOO_CACHE"] = cache
    os.environ.pop("MSZOO_BACKEND", None)
    argv = ["--arch", case["model"], "--pretrained", case["checkpoint"], "--input", case["folder"],
            "--batch_size", str(case["batch_size"]), "--output", os.path.join(case["folder"], "..", "pred.json")]
    if case["call"] not in ("first", "second"):
        argv += ["--backend", case["call"]]

    def run():
        from mszoo.cli import run as run_main
        from mszoo.tools.infer import main

        if run_main(main, argv) != 0:
            raise RuntimeError("infer.py failed")

    return _e2e_timed(run, case)


def case_e2e_timm(case):
    """The timm script: ``create_transform`` from the model's data config, batches of ``batch_size``, top-5."""
    def run():
        import timm
        import torch
        from PIL import Image
        from timm.data import create_transform, resolve_data_config

        torch.set_num_threads(case["threads"])
        model = timm.create_model(case["model"], pretrained=False).eval()
        transform = create_transform(**resolve_data_config({}, model=model))
        files = sorted(os.path.join(root, n) for root, _, names in os.walk(case["folder"]) for n in names)
        top = {}
        for i in range(0, len(files), case["batch_size"]):
            chunk = files[i:i + case["batch_size"]]
            batch = torch.stack([transform(Image.open(f).convert("RGB")) for f in chunk])
            with torch.no_grad():
                probs = model(batch).softmax(-1).topk(5)
            top.update(zip(chunk, probs.indices.tolist()))
        return int(sum(p.numel() for p in model.parameters()))

    return _e2e_timed(run, case)


def case_e2e_setup(case):
    """A checkpoint of ``case["model"]`` (random weights, with its record) for the end-to-end cases."""
    _ms_setup(case["threads"])
    import mindspore as ms

    from mszoo.config import parse_config
    from mszoo.models.record import RECORD_KEY, record_to_text
    from mszoo.resolve import record_of

    model = _our_model(case["model"], 224)
    cfg, _ = parse_config(["--arch", case["model"]])
    ms.save_checkpoint(model, case["checkpoint"], append_dict={RECORD_KEY: record_to_text(record_of(cfg))})
    return dict(images_per_s=0.0, step_ms=0.0, first_step_s=0.0, params=_count(model))


CASES = {
    ("infer", "ours"): case_infer_ours, ("train", "ours"): case_train_ours, ("data", "ours"): case_data_ours,
    ("infer", "timm"): case_infer_timm, ("train", "timm"): case_train_timm, ("data", "timm"): case_data_timm,
    ("infer_e2e", "ours"): case_e2e_ours, ("infer_e2e", "timm"): case_e2e_timm, ("e2e_setup", "ours"): case_e2e_setup,
}


def run_case_inline(case):
    """Run one case in this process and add its peak RSS."""
    result = CASES[(case["mode"], case["impl"])](case)
    result["peak_rss_mb"] = _peak_rss_mb()
    return result


def run_case(case, timeout):
    """One case in a fresh subprocess; returns the result dict (with ``error`` on failure)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # where mszoo imports from
    env = dict(os.environ, GLOG_v="3", OMP_NUM_THREADS=str(case["threads"]))
    try:
        out = subprocess.run([sys.executable, "-m", "mszoo.tools.benchmark", "--case", json.dumps(case)], cwd=root,
                             capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return dict(error=f"timed out after {timeout}s")
    lines = [line for line in out.stdout.splitlines() if line.startswith("BENCH_RESULT ")]
    if out.returncode != 0 or not lines:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return dict(error=tail[:300])
    return json.loads(lines[-1][len("BENCH_RESULT "):])


# ------------------------------------------------------------------------------------------ CLI

def _csv(text, cast=str):
    return [cast(t.strip()) for t in str(text).split(",") if t.strip()]


def build_parser():
    p = argparse.ArgumentParser(prog="benchmark.py", allow_abbrev=False, description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="twins_pcpvt_small", help="comma-separated model names")
    p.add_argument("--mode", default="infer,train", help="comma-separated: infer,train,data")
    p.add_argument("--batch_size", "--batch-size", default="1,8", help="comma-separated batch sizes")
    p.add_argument("--image_size", "--image-size", type=int, default=224)
    p.add_argument("--backend", default="mindspore,mindir,onnx", help="inference backends (also: openvino)")
    p.add_argument("--precision", default="f32", help="openvino: comma-separated f32,bf16,int8 (bf16 is compared "
                   "with timm under torch.autocast bf16, int8 with timm float32; int8 calibrates on the benchmark's "
                   "random input: timing only)")
    p.add_argument("--compare", default="", help="'timm' to measure timm in the same run")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads for every framework")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps after the first (compile) step")
    p.add_argument("--windows", type=int, default=3, help="timed windows (median reported)")
    p.add_argument("--iters", type=int, default=3, help="steps per timed window")
    p.add_argument("--repeat", type=int, default=1, help="rounds: every case runs once per round, ours and timm "
                   "taking turns; each ratio is the median of the rounds' ratios (a shared machine's slow spells "
                   "then hit both sides)")
    p.add_argument("--isa", default="auto", help="train mode: comma-separated oneDNN caps for our cases "
                   "(ONEDNN_MAX_CPU_ISA: AVX2, AVX512_CORE, ALL ...; auto = mszoo's choice for this CPU)")
    p.add_argument("--workers", default="1,2", help="data mode: comma-separated loader worker counts")
    p.add_argument("--profile", action="store_true", help="data mode: per-stage milliseconds per image and the "
                   "main process's CPU share")
    p.add_argument("--feed", type=float, default=4000.0, help="data mode: images/s a whole job needs; the summary "
                   "gives the cores that takes")
    p.add_argument("--devices", type=int, default=8, help="data mode: devices (one loader each) of that job")
    p.add_argument("--grad_checkpointing", "--grad-checkpointing", default="false",
                   help="train mode: recompute blocks in the backward pass (true/false; timm where it supports it)")
    p.add_argument("--data_dir", "--data-dir", default=None, help="data mode: an ImageFolder (default: generated)")
    p.add_argument("--images", type=int, default=512, help="infer_e2e mode: generated JPEGs in the folder")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per case")
    p.add_argument("--json", default=None, help="append JSON lines to this file")
    p.add_argument("--plot", default=None, help="write a PNG bar chart of images/s")
    p.add_argument("--case", default=None, help=argparse.SUPPRESS)
    return p


def plan_cases(args):
    from mszoo.models import resolve_name

    models = [resolve_name(m) for m in _csv(args.model)]
    modes = _checked_choices("--mode", _csv(args.mode), MODES)
    backends = _checked_choices("--backend", _csv(args.backend), BACKENDS)
    precisions = _checked_choices("--precision", _csv(args.precision), ("f32", "bf16", "int8"))
    batches = _checked_counts(_csv(args.batch_size, int), args.repeat)
    compare = _checked_compare(_csv(args.compare))
    gc = _grad_checkpointing(args.grad_checkpointing)
    base = dict(image_size=args.image_size, threads=args.threads, warmup=args.warmup, windows=args.windows,
                iters=args.iters, grad_checkpointing=gc, images=args.images)
    cases = []
    for mode in modes:
        if mode == "data":
            workers = _checked_counts(_csv(args.workers, int), 1, flag="--workers")
            cases.extend(_data_cases(dict(base, profile=bool(args.profile)), batches, workers, compare))
            continue
        for model in models:
            for batch in batches:
                if mode == "infer_e2e":
                    cases.extend(_e2e_cases(base, model, batch, backends))
                else:
                    for isa in (_csv(args.isa) if mode == "train" else ["auto"]):
                        cases.extend(_our_model_cases(dict(base, isa=isa), mode, model, batch, backends,
                                                      precisions))
                if compare and model in set(_timm_models()):
                    cases.extend(_timm_cases(base, mode, model, batch, cases))
    return cases


def _checked_choices(flag, values, choices):
    """``values``, or a ``ConfigError`` naming ``flag`` and the values not among ``choices``."""
    from mszoo.config import ConfigError

    bad = [v for v in values if v not in choices]
    if bad:
        raise ConfigError(f"{flag}: unknown {', '.join(bad)} (choose from {', '.join(choices)})")
    return values


def _checked_counts(batches, repeat, flag="--batch_size"):
    """``batches``, after checking that every value of ``flag`` and ``--repeat`` are at least 1."""
    from mszoo.config import ConfigError

    if not batches or any(b < 1 for b in batches):
        raise ConfigError(f"{flag}: values must be >= 1")
    if repeat < 1:
        raise ConfigError("--repeat: must be >= 1")
    return batches


def _checked_compare(compare):
    """The ``--compare`` list: empty or ``['timm']``."""
    from mszoo.config import ConfigError

    if compare and compare != ["timm"]:
        raise ConfigError("--compare: only 'timm' is supported")
    return compare


def _grad_checkpointing(text):
    """``--grad_checkpointing`` as a bool (``true`` or ``false``, any case)."""
    from mszoo.config import ConfigError

    gc = str(text).strip().lower()
    if gc not in ("true", "false"):
        raise ConfigError(f"--grad_checkpointing: expected true or false, got {text!r}")
    return gc == "true"


def _data_cases(base, batches, workers, compare):
    """The data-loading cases: ours and each compared implementation, per batch size and worker count."""
    return [dict(base, mode="data", impl=impl, model="-", backend=f"{count} worker" + "s" * (count > 1),
                 batch_size=batch, precision="f32", workers=count)
            for batch in batches for count in workers for impl in ["ours"] + compare]


def _our_model_cases(base, mode, model, batch, backends, precisions):
    """Our cases of one model and batch: inference per backend (OpenVINO per precision), or one training case."""
    if mode != "infer":
        return [dict(base, mode=mode, impl="ours", model=model, backend="mindspore", batch_size=batch,
                     precision="f32")]
    return [dict(base, mode=mode, impl="ours", model=model, backend=backend, batch_size=batch, precision=precision)
            for backend in backends for precision in (precisions if backend == "openvino" else ["f32"])]


def _e2e_cases(base, model, batch, backends):
    """infer.py end to end: its first call (empty IR cache), its second, and one with ``--backend mindspore`` when
    ``backends`` lists it (the exported-file backends need ``--model``: not this mode's)."""
    calls = ["first", "second"] + (["mindspore"] if "mindspore" in backends else [])
    return [dict(base, mode="infer_e2e", impl="ours", model=model, backend=f"infer.py/{call}", call=call,
                 batch_size=batch, precision="f32") for call in calls]


def _timm_cases(base, mode, model, batch, cases):
    """timm's cases of one model and batch: one per precision ours is compared at in ``cases``."""
    timm_precisions = sorted({_timm_precision(c["precision"]) for c in cases if c["mode"] == mode
                              and c["model"] == model and c["batch_size"] == batch}) or ["f32"]
    return [dict(base, mode=mode, impl="timm", model=model, backend="torch", batch_size=batch, precision=precision)
            for precision in timm_precisions]


def _timm_precision(precision):
    """What ours at ``precision`` is compared with: timm under bf16 autocast for bf16, timm float32 otherwise
    (int8 against float32: the speed a user gains by quantizing)."""
    return "bf16" if precision == "bf16" else "f32"


def _timm_models():
    try:
        import timm
    except ImportError:
        return []
    return timm.list_models()


def format_table(rows):
    header = ("mode", "model", "impl", "backend", "prec", "batch", "img/s", "step ms", "first s", "RSS MB", "params",
              "vs timm")
    lines = [header]
    for r in rows:
        res = r["result"]
        if "error" in res:
            lines.append((r["mode"], r["model"], r["impl"], r["backend"], r.get("precision", "f32"),
                          str(r["batch_size"]), "error: " +
                          res["error"][:60], "", "", "", "", ""))
            continue
        impl = r["impl"] + ("+gc" if r.get("grad_checkpointing") and res.get("grad_checkpointing", True) else "")
        impl += f"@{r['isa']}" if r.get("isa", "auto") != "auto" else ""
        lines.append((r["mode"], r["model"], impl, r["backend"], r.get("precision", "f32"), str(r["batch_size"]),
                      f"{res['images_per_s']:.2f}", f"{res['step_ms']:.1f}", f"{res['first_step_s']:.1f}",
                      f"{res['peak_rss_mb']:.0f}", f"{res['params']:,}" if res.get("params") else "-",
                      _ratio_text(r)))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)) for line in lines)


def _ratio_text(row):
    if not row.get("ratio"):
        return ""
    low_high = row.get("ratio_range")
    return f"{row['ratio']:.2f}x" + (f" ({low_high[0]:.2f}-{low_high[1]:.2f})" if low_high else "")


def merge_rounds(results):
    """One case's results from several rounds as one result: median images/s and step time, the largest peak RSS,
    the first round's compile time, and every round's images/s under ``rounds``. A failed round fails the case."""
    failed = [r for r in results if "error" in r]
    if failed:
        return failed[0]
    if len(results) == 1:
        return results[0]
    merged = dict(results[0])
    merged["rounds"] = [r["images_per_s"] for r in results]
    merged["images_per_s"] = statistics.median(merged["rounds"])
    merged["step_ms"] = statistics.median(r["step_ms"] for r in results)
    merged["peak_rss_mb"] = max(r["peak_rss_mb"] for r in results)
    for key in ("cpu_ms", "main_cpu_ms"):
        if key in merged:
            merged[key] = statistics.median(r[key] for r in results)
    return merged


def add_ratios(rows):
    """``ratio`` = ours / timm images/s for the same mode, model, batch and compared precision. Rows measured in
    rounds pair round with round: the ratio is the median of the rounds' ratios, ``ratio_range`` their spread."""
    key = lambda r, precision: (r["mode"], r["model"], r["batch_size"], precision, r.get("workers"))
    timm = {key(r, r.get("precision", "f32")): r["result"] for r in rows if r["impl"] == "timm"}
    for r in rows:
        ref = timm.get(key(r, _timm_precision(r.get("precision", "f32"))))
        if r["impl"] != "ours" or not ref or "error" in ref or "error" in r["result"]:
            continue
        ours_rounds, timm_rounds = r["result"].get("rounds"), ref.get("rounds")
        if ours_rounds and timm_rounds and len(ours_rounds) == len(timm_rounds):
            ratios = [a / b for a, b in zip(ours_rounds, timm_rounds)]
            r["ratio"], r["ratio_range"] = statistics.median(ratios), [min(ratios), max(ratios)]
        else:
            r["ratio"] = r["result"]["images_per_s"] / ref["images_per_s"]
    return rows


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if "error" not in r["result"]]
    labels = [f"{r['mode']}\n{r['model']}\n{r['impl']}/{r['backend']}\nbs{r['batch_size']}" for r in ok]
    values = [r["result"]["images_per_s"] for r in ok]
    colors = ["tab:orange" if r["impl"] == "timm" else "tab:blue" for r in ok]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(ok)), 4.5))
    ax.bar(range(len(ok)), values, color=colors)
    ax.set_xticks(range(len(ok)))
    ax.set_xticklabels(labels, fontsize=6)
    ax.set_ylabel("images / s")
    ax.set_title("benchmark (blue: ours, orange: timm)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    from mszoo.config import parse_script_args

    args = parse_script_args(build_parser(), argv)
    if args.case:
        case = json.loads(args.case)
        print("BENCH_RESULT " + json.dumps(run_case_inline(case)), flush=True)
        return 0
    cases = plan_cases(args)
    folder = _attach_data_folder(cases, args.data_dir)
    e2e_dir = _attach_e2e_inputs(cases, args.timeout)
    try:
        results = _run_rounds(cases, args.repeat, args.timeout)
    finally:
        if e2e_dir:
            shutil.rmtree(e2e_dir, ignore_errors=True)
    rows = [dict(case, result=merge_rounds(case_results)) for case, case_results in zip(cases, results)]
    add_ratios(rows)
    print(format_table(rows))
    for line in e2e_summary(rows):
        print(line)
    _print_data_summary(rows, args)
    _write_outputs(rows, args.json, args.plot)
    if folder and not args.data_dir:
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if any("error" in r["result"] for r in rows) else 0


def _attach_e2e_inputs(cases, timeout):
    """For the infer_e2e cases: a folder of generated JPEGs and a checkpoint per model (made in a subprocess), set
    on each case; returns their temporary folder (None without such cases)."""
    e2e = [c for c in cases if c["mode"] == "infer_e2e"]
    if not e2e:
        return None
    tmp = tempfile.mkdtemp(prefix="bench_e2e_")
    photos = make_jpeg_folder(os.path.join(tmp, "photos"), n=e2e[0]["images"])
    for model in sorted({c["model"] for c in e2e}):
        ckpt = os.path.join(tmp, f"{model}.ckpt")
        made = run_case(dict(e2e[0], mode="e2e_setup", impl="ours", model=model, checkpoint=ckpt), timeout)
        if "error" in made:
            raise RuntimeError(f"infer_e2e: cannot make a {model} checkpoint: {made['error']}")
        for case in e2e:
            if case["model"] == model:
                case.update(folder=photos, checkpoint=ckpt)
    return tmp


def e2e_summary(rows):
    """One line per infer_e2e model and batch: the second call against timm, and the first call's extra seconds."""
    timm = {(r["model"], r["batch_size"]): r["result"] for r in rows
            if r["mode"] == "infer_e2e" and r["impl"] == "timm"}
    lines = []
    for r in rows:
        ref = timm.get((r["model"], r["batch_size"]))
        if r["mode"] != "infer_e2e" or r["impl"] != "ours" or not ref or "error" in ref or "error" in r["result"]:
            continue
        res = r["result"]
        export = f" (its export process {res['child_rss_mb']:.0f} MB)" if r["call"] == "first" else ""
        lines.append(f"infer_e2e {r['model']} batch {r['batch_size']} {r['call']}: {res['first_step_s']:.1f} s against "
                     f"timm's {ref['first_step_s']:.1f} s ({res['first_step_s'] - ref['first_step_s']:+.1f} s, "
                     f"{r.get('ratio', 0):.2f}x), peak RSS {res['peak_rss_mb']:.0f} MB{export} against timm's "
                     f"{ref['peak_rss_mb']:.0f} MB")
    return lines


def _print_data_summary(rows, args):
    """After the table: scaling with workers and the cores a job needs, and with ``--profile`` the stages."""
    from mszoo.tools.data_profile import scaling_lines, stage_lines

    lines = scaling_lines(rows, args.feed, args.devices) + stage_lines(rows)
    if lines:
        print("\n" + "\n".join(lines))


def _attach_data_folder(cases, data_dir):
    """The image folder the data cases read (``data_dir``, else generated JPEGs: at least 16 batches per worker
    of the largest case, so an epoch measures the workers' throughput more than their start), set on each; None
    without data cases."""
    folder = None
    data = [c for c in cases if c["mode"] == "data"]
    if data:
        n = max([128] + [16 * c["batch_size"] * c["workers"] for c in data])
        folder = data_dir or make_jpeg_folder(tempfile.mkdtemp(prefix="bench_data_"), n=n)
    for case in cases:
        if case["mode"] == "data":
            case["folder"] = folder
    return folder


def _run_rounds(cases, repeat, timeout):
    """Every case once per round, the cases taking turns; each case's list of results."""
    results = [[] for _ in cases]
    for round_ in range(repeat):
        for case, case_results in zip(cases, results):
            label = f"{case['mode']} {case['model']} {case['impl']}/{case['backend']} batch {case['batch_size']}"
            rounds = f" (round {round_ + 1}/{repeat})" if repeat > 1 else ""
            print(f"running {label}{rounds} ...", flush=True)
            case_results.append(run_case(case, timeout))
    return results


def _write_outputs(rows, json_path, plot_path):
    """Append the rows as JSON lines to ``json_path`` and plot them to ``plot_path`` (each when given)."""
    if json_path:
        with open(json_path, "a", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    if plot_path:
        plot(rows, plot_path)
        print(f"wrote {plot_path}")


cli = console(main)

if __name__ == "__main__":
    sys.exit(main())
