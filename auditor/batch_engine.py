"""Deprecated location: ``auditor.batch_engine`` moved to :mod:`auditor.batch.engine`; this alias keeps old imports working."""
import sys
import warnings

import auditor.batch.engine as _moved

warnings.warn("auditor.batch_engine is deprecated; import from auditor.batch.engine (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
