"""Deprecated location: ``auditor.ci_outputs`` moved to :mod:`auditor.report.ci_outputs`; this alias keeps old imports working."""
import sys
import warnings

import auditor.report.ci_outputs as _moved

warnings.warn("auditor.ci_outputs is deprecated; import from auditor.report.ci_outputs (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
