"""Deprecated location: ``auditor.factory`` moved to :mod:`auditor.models.factory`; this alias keeps old imports working."""
import sys
import warnings

import auditor.models.factory as _moved

warnings.warn("auditor.factory is deprecated; import from auditor.models.factory (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
