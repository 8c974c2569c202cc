"""Deprecated location: ``auditor.similarity`` moved to :mod:`auditor.scoring.similarity`; this alias keeps old imports working."""
import sys
import warnings

import auditor.scoring.similarity as _moved

warnings.warn("auditor.similarity is deprecated; import from auditor.scoring.similarity (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
