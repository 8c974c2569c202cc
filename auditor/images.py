"""Deprecated location: ``auditor.images`` moved to :mod:`auditor.report.images`; this alias keeps old imports working."""
import sys
import warnings

import auditor.report.images as _moved

warnings.warn("auditor.images is deprecated; import from auditor.report.images (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
