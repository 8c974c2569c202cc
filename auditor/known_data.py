"""Deprecated location: ``auditor.known_data`` moved to :mod:`auditor.data.known`; this alias keeps old imports working."""
import sys
import warnings

import auditor.data.known as _moved

warnings.warn("auditor.known_data is deprecated; import from auditor.data.known (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
