"""Deprecated location: ``auditor.score_figures`` moved to :mod:`auditor.report.score_figures`; this alias keeps old imports working."""
import sys
import warnings

import auditor.report.score_figures as _moved

warnings.warn("auditor.score_figures is deprecated; import from auditor.report.score_figures (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
