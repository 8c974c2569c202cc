"""Deprecated location: ``auditor.scoring_gap`` moved to :mod:`auditor.scoring.gap`; this alias keeps old imports working."""
import sys
import warnings

import auditor.scoring.gap as _moved

warnings.warn("auditor.scoring_gap is deprecated; import from auditor.scoring.gap (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
