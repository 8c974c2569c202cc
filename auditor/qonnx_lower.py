"""Deprecated location: ``auditor.qonnx_lower`` moved to :mod:`auditor.models.qonnx_lower`; this alias keeps old imports working."""
import sys
import warnings

import auditor.models.qonnx_lower as _moved

warnings.warn("auditor.qonnx_lower is deprecated; import from auditor.models.qonnx_lower (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
