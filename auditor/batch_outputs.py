"""Deprecated location: ``auditor.batch_outputs`` moved to :mod:`auditor.batch.outputs`; this alias keeps old imports working."""
import sys
import warnings

import auditor.batch.outputs as _moved

warnings.warn("auditor.batch_outputs is deprecated; import from auditor.batch.outputs (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
