"""Deprecated location: ``auditor.zeroth_order`` moved to :mod:`auditor.models.zeroth_order`; this alias keeps old imports working."""
import sys
import warnings

import auditor.models.zeroth_order as _moved

warnings.warn("auditor.zeroth_order is deprecated; import from auditor.models.zeroth_order (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
