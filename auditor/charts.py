"""Deprecated location: ``auditor.charts`` moved to :mod:`auditor.report.charts`; this alias keeps old imports working."""
import sys
import warnings

import auditor.report.charts as _moved

warnings.warn("auditor.charts is deprecated; import from auditor.report.charts (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
