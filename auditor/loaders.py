"""Deprecated location: ``auditor.loaders`` moved to :mod:`auditor.models.loaders`; this alias keeps old imports working."""
import sys
import warnings

import auditor.models.loaders as _moved

warnings.warn("auditor.loaders is deprecated; import from auditor.models.loaders (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
