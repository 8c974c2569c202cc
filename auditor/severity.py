"""Deprecated location: ``auditor.severity`` moved to :mod:`auditor.core.severity`; this alias keeps old imports working."""
import sys
import warnings

import auditor.core.severity as _moved

warnings.warn("auditor.severity is deprecated; import from auditor.core.severity (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
