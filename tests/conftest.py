import logging

import pytest

pytest_plugins = ["auditor.testing"]

for noisy in ("onnxscript", "onnx_ir", "torch.onnx"):
    logging.getLogger(noisy).setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def datasets():
    from auditor.core.paths import datasets_dir

    root = datasets_dir()
    if root is None:
        pytest.skip("shared datasets not found (set AUDITOR_DATASETS or place ../shared/datasets beside the checkout)")
    return root
