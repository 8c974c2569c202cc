"""Deprecated location: ``auditor.results`` moved to :mod:`auditor.core.results`; this alias keeps old imports working."""
import sys
import warnings

import auditor.core.results as _moved

warnings.warn("auditor.results is deprecated; import from auditor.core.results (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
