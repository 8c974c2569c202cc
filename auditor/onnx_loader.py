"""Deprecated location: ``auditor.onnx_loader`` moved to :mod:`auditor.models.onnx_loader`; this alias keeps old imports working."""
import sys
import warnings

import auditor.models.onnx_loader as _moved

warnings.warn("auditor.onnx_loader is deprecated; import from auditor.models.onnx_loader (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
