"""Deprecated location: ``auditor.scoring_config`` moved to :mod:`auditor.scoring.config`; this alias keeps old imports working."""
import sys
import warnings

import auditor.scoring.config as _moved

warnings.warn("auditor.scoring_config is deprecated; import from auditor.scoring.config (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
