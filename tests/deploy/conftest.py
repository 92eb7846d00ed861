"""Deploy fixtures: each family's full-size model exported once per session (the slow part of the deploy tests),
shared by the ONNX/MindIR parity test (test_export.py) and the OpenVINO one (test_openvino.py)."""
import os

import numpy as np
import pytest

FULL_SIZE = ["twins_svt_small", "tnt_s_patch16_224", "t2t_vit_t_14"]  # one per family


def export_with_reference(model, cfg, out_dir, batches):
    """``model`` exported by ``export_to_file`` to ONNX and MINDIR under ``out_dir``, with the model's own logits
    on random inputs of each batch size: ``{"onnx", "mindir", "inputs", "expected", "cell_types"}``. The inputs
    are the first rows of one batch, and their logits those rows of the model's output on it (one forward: at
    full size each costs seconds in PyNative; eval-mode rows do not depend on each other)."""
    import mindspore as ms

    from src.deploy.export import export_to_file

    onnx_path = export_to_file(model, cfg, "ONNX", os.path.join(out_dir, f"{cfg.arch}.onnx"))
    mindir_path = export_to_file(model, cfg, "MINDIR", os.path.join(out_dir, f"{cfg.arch}.mindir"))
    x = np.random.RandomState(0).randn(max(batches), 3, cfg.image_size, cfg.image_size).astype(np.float32)
    logits = model(ms.Tensor(x)).asnumpy()
    inputs, expected = [x[:batch] for batch in batches], [logits[:batch] for batch in batches]
    return {"onnx": onnx_path, "mindir": mindir_path, "inputs": inputs, "expected": expected,
            "cell_types": [type(cell).__name__ for _, cell in model.cells_and_names()]}


@pytest.fixture(scope="session")
def full_size_exports(tmp_path_factory):
    """``get(arch)``: ``export_with_reference`` of the full-size ``arch`` (1000 classes, 224 px, its random
    initial weights) at batch 1 and 2, done on the first request in the session and then reused."""
    done = {}

    def get(arch):
        if arch not in done:
            from src.config import parse_config
            from src.models import create_model

            cfg, _ = parse_config(["--arch", arch, "--image_size", "224", "--num_classes", "1000"])
            done[arch] = export_with_reference(create_model(arch, num_classes=1000), cfg,
                                               str(tmp_path_factory.mktemp(arch)), (1, 2))
        return done[arch]

    return get
