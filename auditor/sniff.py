"""Deprecated location: ``auditor.sniff`` moved to :mod:`auditor.models.sniff`; this alias keeps old imports working."""
import sys
import warnings

import auditor.models.sniff as _moved

warnings.warn("auditor.sniff is deprecated; import from auditor.models.sniff (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
