"""Deprecated location: ``auditor.onnx_model`` moved to :mod:`auditor.models.onnx_model`; this alias keeps old imports working."""
import sys
import warnings

import auditor.models.onnx_model as _moved

warnings.warn("auditor.onnx_model is deprecated; import from auditor.models.onnx_model (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
