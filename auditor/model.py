"""Deprecated location: ``auditor.model`` moved to :mod:`auditor.models.model`; this alias keeps old imports working."""
import sys
import warnings

import auditor.models.model as _moved

warnings.warn("auditor.model is deprecated; import from auditor.models.model (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
