"""Deprecated location: ``auditor.scoring_reference`` moved to :mod:`auditor.scoring.reference`; this alias keeps old imports working."""
import sys
import warnings

import auditor.scoring.reference as _moved

warnings.warn("auditor.scoring_reference is deprecated; import from auditor.scoring.reference (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
