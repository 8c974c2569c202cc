"""Deprecated location: ``auditor.paths`` moved to :mod:`auditor.core.paths`; this alias keeps old imports working."""
import sys
import warnings

import auditor.core.paths as _moved

warnings.warn("auditor.paths is deprecated; import from auditor.core.paths (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
