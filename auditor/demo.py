"""Deprecated location: ``auditor.demo`` moved to :mod:`auditor.lab.demo`; this alias keeps old imports working."""
import sys
import warnings

import auditor.lab.demo as _moved

warnings.warn("auditor.demo is deprecated; import from auditor.lab.demo (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
