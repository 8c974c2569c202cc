"""Deprecated location: ``auditor.image_fit`` moved to :mod:`auditor.models.image_fit`; this alias keeps old imports working."""
import sys
import warnings

import auditor.models.image_fit as _moved

warnings.warn("auditor.image_fit is deprecated; import from auditor.models.image_fit (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
