"""Where the training input pipeline spends its time: per-stage costs and the CPU of its processes.

``stage_profile`` runs one side's training transform (ours or timm's) stage by stage over image files in this
process and returns milliseconds per image for each stage: decode, crop/resize, flip, RandAugment,
normalise/layout, erasing, and the batching (ours: none, the normalisation writes each image into its slot of
the worker's batch array; timm: its ``default_collate``). :class:`CpuMeter` measures the CPU seconds of this
process and of its workers, which ``benchmark.py --mode data`` takes around its timed epochs: the main
process's share is the serial part (the hand-off of each batch from a worker, the tensors, the iteration), the
total per image is what each image costs in cores whatever the machine's load.
"""
import os
import resource
import time

__all__ = ["STAGES", "stage_profile", "CpuMeter", "cores_needed"]

STAGES = ("decode", "crop/resize", "flip", "RandAugment", "normalise/layout", "erasing", "batching")

# transform class name -> stage (ours and timm's)
_STAGE_OF = {
    "RandomResizedCrop": "crop/resize", "RandomResizedCropAndInterpolation": "crop/resize",
    "RandomHorizontalFlip": "flip", "RandAugment": "RandAugment", "ToNormalizedArray": "normalise/layout",
    "MaybeToTensor": "normalise/layout", "ToTensor": "normalise/layout", "Normalize": "normalise/layout",
    "RandomErasing": "erasing",
}


class CpuMeter:
    """CPU seconds of this process and of its worker processes during the ``with`` body.

    Workers are sampled every ``interval`` seconds while they live (``psutil``), each counted at its last sample:
    a loader's workers end with its iterator and are not always waited for, so ``RUSAGE_CHILDREN`` would miss
    them. The sampling thread's own CPU is taken out of this process's.
    """

    def __init__(self, interval=0.1):
        self.interval = interval
        self.seen = {}
        self.own = self.children = 0.0

    def _sample(self, me):
        import psutil

        for child in me.children(recursive=True):
            try:
                times = child.cpu_times()
                key = (child.pid, child.create_time())
            except psutil.Error:
                continue
            self.seen[key] = times.user + times.system

    def _run(self):
        import psutil

        me = psutil.Process()
        while not self._done.wait(self.interval):
            self._sample(me)
        self._sample(me)
        self._sampler_cpu = time.thread_time()

    def __enter__(self):
        import threading

        self._done = threading.Event()
        self._start = _own_cpu()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        self.own = _own_cpu() - self._start - self._sampler_cpu
        self.children = sum(self.seen.values())
        return False


def _own_cpu():
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _image_files(folder, limit):
    files = []
    for root, _, names in sorted(os.walk(folder)):
        files.extend(os.path.join(root, n) for n in sorted(names) if n.lower().endswith((".jpg", ".jpeg", ".png")))
    return files[:limit]


def _ours(image_size, aug):
    from mszoo.data import create_transform
    from mszoo.data.dataset import load_rgb_image

    tf = create_transform(image_size, is_training=True, interpolation="bicubic", **aug)
    return load_rgb_image, tf.transforms, _batch_ours


def _batch_ours(images):
    """Nothing to do: a worker's transform writes each image into its slot of the batch array."""
    return images


def _timm(image_size, aug):
    import torch
    from timm.data import create_transform
    from torch.utils.data import default_collate
    from torchvision.datasets.folder import pil_loader

    torch.set_num_threads(1)
    tf = create_transform(image_size, is_training=True, interpolation="bicubic", **aug)
    return pil_loader, tf.transforms, lambda images: default_collate([(x, 0) for x in images])


def stage_profile(impl, folder, image_size, aug, batch_size, limit=128):
    """Milliseconds per image of each stage in ``STAGES`` (plus ``total``) for ``impl`` ('ours' or 'timm'),
    over the first ``limit`` images of ``folder``, in this process (one core)."""
    decode, transforms, collate = (_ours if impl == "ours" else _timm)(image_size, aug)
    totals = dict.fromkeys(STAGES, 0.0)
    files = _image_files(folder, limit)
    batch = []
    for path in files:
        t0 = time.perf_counter()
        img = decode(path)
        totals["decode"] += time.perf_counter() - t0
        for t in transforms:
            t0 = time.perf_counter()
            img = t(img)
            totals[_STAGE_OF.get(type(t).__name__, type(t).__name__)] += time.perf_counter() - t0
        batch.append(img)
        if len(batch) == batch_size or path is files[-1]:
            t0 = time.perf_counter()
            collate(batch)
            totals["batching"] += time.perf_counter() - t0
            batch = []
    ms = {k: 1e3 * v / len(files) for k, v in totals.items()}
    ms["total"] = sum(ms.values())
    return ms


def cores_needed(images_per_s, cpu_ms_per_image):
    """Cores that ``images_per_s`` take at ``cpu_ms_per_image`` CPU milliseconds each (every process counted)."""
    return images_per_s * cpu_ms_per_image / 1e3


def _data_rows(rows):
    """``{(impl, batch): {workers: result}}`` of the data rows that ran."""
    out = {}
    for r in rows:
        if r["mode"] == "data" and "error" not in r["result"]:
            out.setdefault((r["impl"], r["batch_size"]), {})[r["workers"]] = r["result"]
    return out


def scaling_lines(rows, feed, devices):
    """Per implementation and batch size: images/s per worker count, what the second worker adds, the CPU per
    image (all processes, and the main process's share) and the cores ``feed`` images/s take on ``devices``."""
    lines = []
    for (impl, batch), by_workers in sorted(_data_rows(rows).items()):
        counts = sorted(by_workers)
        rates = ", ".join(f"{w} worker{'s' * (w > 1)} {by_workers[w]['images_per_s']:.0f} img/s "
                          f"({by_workers[w]['images_per_s'] / w:.0f} per worker)" for w in counts)
        lines.append(f"{impl} batch {batch}: {rates}" + _gain_text(by_workers, counts))
        top = by_workers[counts[-1]]
        if "cpu_ms" not in top:
            continue
        cores = cores_needed(feed, top["cpu_ms"])
        cap = 1e3 / top["main_cpu_ms"] if counts[-1] > 1 and top["main_cpu_ms"] > 0 else None
        lines.append(f"  CPU per image {top['cpu_ms']:.2f} ms (main process {top['main_cpu_ms']:.2f} ms"
                     + (f": it caps one loader at {cap:.0f} img/s" if cap else "") + f"); to feed {feed:.0f} img/s "
                     f"({devices} devices, {feed / devices:.0f} each), give the loader about {cores:.0f} cores")
    return lines


def _gain_text(by_workers, counts):
    if len(counts) < 2:
        return ""
    one, two = by_workers[counts[0]]["images_per_s"], by_workers[counts[1]]["images_per_s"]
    return f"; worker {counts[1]} adds {100 * (two - one) / one:.0f} %"


def stage_lines(rows):
    """With ``--profile``: milliseconds per image of each stage, one column per implementation and batch."""
    profiled = {k: v for k, v in _data_rows(rows).items() if any("stages" in res for res in v.values())}
    if not profiled:
        return []
    columns = sorted(profiled)
    stages = {k: next(res["stages"] for res in v.values() if "stages" in res) for k, v in profiled.items()}
    header = ["stage (ms per image, one core)"] + [f"{impl} b{batch}" for impl, batch in columns]
    table = [header] + [[name] + [f"{stages[c][name]:.3f}" for c in columns] for name in STAGES + ("total",)]
    for workers in sorted({w for v in profiled.values() for w in v if w > 1}):
        table.append([f"main process at {workers} workers (CPU)"] +
                     [_main_text(profiled[c].get(workers)) for c in columns])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in table]


def _main_text(result):
    return f"{result['main_cpu_ms']:.3f}" if result and "main_cpu_ms" in result else "-"
