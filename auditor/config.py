"""Deprecated location: ``auditor.config`` moved to :mod:`auditor.engine.config`; this alias keeps old imports working."""
import sys
import warnings

import auditor.engine.config as _moved

warnings.warn("auditor.config is deprecated; import from auditor.engine.config (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
