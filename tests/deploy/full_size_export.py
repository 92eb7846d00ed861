"""Export one full-size model as ``tests/deploy/conftest.py``'s ``export_with_reference`` does, in a process of
its own (the session fixture runs the three families side by side: export is mostly single-core compiling).

python -m tests.deploy.full_size_export ARCH OUT_DIR   (writes OUT_DIR/ARCH.onnx, reference.npz, .json)
"""
import json
import os
import sys


def main(arch, out_dir):
    import numpy as np

    import tests.conftest  # noqa: F401  the test session's set-up: CPU, PyNative, the oneDNN cap
    from mszoo.config import parse_config
    from mszoo.models import create_model
    from tests.deploy.conftest import FULL_SIZE_BATCHES, FULL_SIZE_FORMATS, export_with_reference

    cfg, _ = parse_config(["--arch", arch, "--image_size", "224", "--num_classes", "1000"])
    exported = export_with_reference(create_model(arch, num_classes=1000), cfg, out_dir, FULL_SIZE_BATCHES,
                                     FULL_SIZE_FORMATS)
    np.savez(os.path.join(out_dir, "reference.npz"), x=exported["inputs"][-1], logits=exported["expected"][-1])
    with open(os.path.join(out_dir, "reference.json"), "w") as f:
        json.dump({k: exported[k] for k in ("onnx", "mindir", "cell_types")}, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
