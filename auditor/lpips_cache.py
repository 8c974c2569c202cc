"""Deprecated location: ``auditor.lpips_cache`` moved to :mod:`auditor.scoring.lpips_scorer`; this alias keeps old imports working."""
import sys
import warnings

import auditor.scoring.lpips_scorer as _moved

warnings.warn("auditor.lpips_cache is deprecated; import from auditor.scoring.lpips_scorer (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
