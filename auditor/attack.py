"""Deprecated location: ``auditor.attack`` moved to :mod:`auditor.core.attack`; this alias keeps old imports working."""
import sys
import warnings

import auditor.core.attack as _moved

warnings.warn("auditor.attack is deprecated; import from auditor.core.attack (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
