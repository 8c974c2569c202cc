"""Deprecated location: ``auditor.presets`` moved to :mod:`auditor.lab.presets`; this alias keeps old imports working."""
import sys
import warnings

import auditor.lab.presets as _moved

warnings.warn("auditor.presets is deprecated; import from auditor.lab.presets (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
