"""Deprecated location: ``auditor.plugins`` moved to :mod:`auditor.engine.plugins`; this alias keeps old imports working."""
import sys
import warnings

import auditor.engine.plugins as _moved

warnings.warn("auditor.plugins is deprecated; import from auditor.engine.plugins (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
