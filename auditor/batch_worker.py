"""Deprecated location: ``auditor.batch_worker`` moved to :mod:`auditor.batch.worker`; this alias keeps old imports working."""
import sys
import warnings

import auditor.batch.worker as _moved

warnings.warn("auditor.batch_worker is deprecated; import from auditor.batch.worker (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
