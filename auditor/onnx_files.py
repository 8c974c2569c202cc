"""Deprecated location: ``auditor.onnx_files`` moved to :mod:`auditor.models.onnx_files`; this alias keeps old imports working."""
import sys
import warnings

import auditor.models.onnx_files as _moved

warnings.warn("auditor.onnx_files is deprecated; import from auditor.models.onnx_files (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
