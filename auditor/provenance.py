"""Deprecated location: ``auditor.provenance`` moved to :mod:`auditor.models.provenance`; this alias keeps old imports working."""
import sys
import warnings

import auditor.models.provenance as _moved

warnings.warn("auditor.provenance is deprecated; import from auditor.models.provenance (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
