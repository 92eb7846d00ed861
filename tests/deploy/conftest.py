"""Deploy fixtures: each family's full-size model exported once per session (the slow part of the deploy tests),
shared by the ONNX/MindIR parity test (test_export.py) and the OpenVINO one (test_openvino.py)."""
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.shared import once_per_run

FULL_SIZE = ["twins_svt_small", "tnt_s_patch16_224", "t2t_vit_t_14"]  # one per family
FULL_SIZE_BATCHES = (1, 2)
# Full size is exported to ONNX only: it is what OpenVINO and onnxruntime deploy (test_openvino.py runs these
# files). MINDIR export is the same code at every size, checked per distinct tiny graph in test_export.py; at full
# size it cost each family another 20 s of compiling (the export and the loaded graph).
FULL_SIZE_FORMATS = ("ONNX",)


def export_with_reference(model, cfg, out_dir, batches, formats=("ONNX", "MINDIR")):
    """``model`` exported by ``export_to_file`` to ``formats`` under ``out_dir``, with the model's own logits on
    random inputs of each batch size: ``{"onnx", "mindir" (None when not exported), "inputs", "expected",
    "cell_types"}``. The inputs are the first rows of one batch, and their logits those rows of the model's output
    on it (one forward: at full size each costs seconds in PyNative; eval-mode rows do not depend on each other)."""
    import mindspore as ms

    from mszoo.deploy.export import EXTENSIONS, export_to_file

    paths = {fmt.lower(): export_to_file(model, cfg, fmt, os.path.join(out_dir, cfg.arch + EXTENSIONS[fmt]))
             for fmt in formats}
    x = np.random.RandomState(0).randn(max(batches), 3, cfg.image_size, cfg.image_size).astype(np.float32)
    logits = model(ms.Tensor(x)).asnumpy()
    inputs, expected = [x[:batch] for batch in batches], [logits[:batch] for batch in batches]
    return {"onnx": paths.get("onnx"), "mindir": paths.get("mindir"), "inputs": inputs, "expected": expected,
            "cell_types": [type(cell).__name__ for _, cell in model.cells_and_names()]}


def _export_in_a_process(arch, out_dir):
    """``tests/deploy/full_size_export.py`` run for ``arch`` into ``out_dir``; what it records (paths, cell types)."""
    with open(os.path.join(out_dir, "stderr.txt"), "w") as err:
        code = subprocess.run([sys.executable, "-m", "tests.deploy.full_size_export", arch, str(out_dir)], cwd=ROOT,
                              env=dict(os.environ, GLOG_v="3"), stdout=subprocess.DEVNULL, stderr=err,
                              timeout=900).returncode
    if code != 0:
        with open(os.path.join(out_dir, "stderr.txt")) as f:
            raise RuntimeError(f"tests/deploy/full_size_export.py failed:\n{f.read()[-3000:]}")
    with open(os.path.join(out_dir, "reference.json")) as f:
        return dict(json.load(f), dir=str(out_dir))


def _with_reference(exported):
    reference = np.load(os.path.join(exported["dir"], "reference.npz"))
    exported["inputs"] = [reference["x"][:batch] for batch in FULL_SIZE_BATCHES]
    exported["expected"] = [reference["logits"][:batch] for batch in FULL_SIZE_BATCHES]
    return exported


class FullSizeExports:
    """``self(arch)``: ``export_with_reference`` of the full-size ``arch`` (1000 classes, 224 px, its random initial
    weights) at FULL_SIZE_BATCHES. ``start()`` (or the first request) starts all of FULL_SIZE, each in a process
    of its own (tests/deploy/full_size_export.py), side by side and beside the tests that run meanwhile. Each is
    made once per pytest run (tests/shared.py): the xdist worker that asks second waits for the first one's."""

    def __init__(self, tmp_path_factory):
        self.tmp_path_factory = tmp_path_factory
        self.pool, self.futures = None, {}

    def start(self):
        if self.pool is not None:
            return
        self.pool = ThreadPoolExecutor(len(FULL_SIZE))
        for arch in FULL_SIZE:
            self.futures[arch] = self.pool.submit(
                once_per_run, self.tmp_path_factory, f"full_size_{arch}",
                lambda out_dir, arch=arch: _export_in_a_process(arch, out_dir))

    def __call__(self, arch):
        self.start()
        return _with_reference(self.futures[arch].result())

    def close(self):
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="session")
def full_size_exports(tmp_path_factory):
    """The session's FullSizeExports (each family exported once, for test_export.py and test_openvino.py)."""
    exports = FullSizeExports(tmp_path_factory)
    yield exports
    exports.close()
