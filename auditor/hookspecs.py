"""Deprecated location: ``auditor.hookspecs`` moved to :mod:`auditor.core.hookspecs`; this alias keeps old imports working."""
import sys
import warnings

import auditor.core.hookspecs as _moved

warnings.warn("auditor.hookspecs is deprecated; import from auditor.core.hookspecs (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
