"""Deprecated location: ``auditor.zoo`` moved to :mod:`auditor.lab.zoo`; this alias keeps old imports working."""
import sys
import warnings

import auditor.lab.zoo as _moved

warnings.warn("auditor.zoo is deprecated; import from auditor.lab.zoo (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
