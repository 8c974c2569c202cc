"""Deprecated location: ``auditor.preflight`` moved to :mod:`auditor.models.preflight`; this alias keeps old imports working."""
import sys
import warnings

import auditor.models.preflight as _moved

warnings.warn("auditor.preflight is deprecated; import from auditor.models.preflight (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
