"""Deprecated location: ``auditor.errors`` moved to :mod:`auditor.core.errors`; this alias keeps old imports working."""
import sys
import warnings

import auditor.core.errors as _moved

warnings.warn("auditor.errors is deprecated; import from auditor.core.errors (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
