"""Deprecated location: ``auditor.scoring_calibration`` moved to :mod:`auditor.scoring.calibration`; this alias keeps old imports working."""
import sys
import warnings

import auditor.scoring.calibration as _moved

warnings.warn("auditor.scoring_calibration is deprecated; import from auditor.scoring.calibration (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
