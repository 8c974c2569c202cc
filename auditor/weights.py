"""Deprecated location: ``auditor.weights`` moved to :mod:`auditor.models.weights`; this alias keeps old imports working."""
import sys
import warnings

import auditor.models.weights as _moved

warnings.warn("auditor.weights is deprecated; import from auditor.models.weights (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
