"""Deprecated location: ``auditor.onnx_graph`` moved to :mod:`auditor.models.onnx_graph`; this alias keeps old imports working."""
import sys
import warnings

import auditor.models.onnx_graph as _moved

warnings.warn("auditor.onnx_graph is deprecated; import from auditor.models.onnx_graph (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
