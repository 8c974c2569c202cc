"""Deprecated location: ``auditor.batch_manifest`` moved to :mod:`auditor.batch.manifest`; this alias keeps old imports working."""
import sys
import warnings

import auditor.batch.manifest as _moved

warnings.warn("auditor.batch_manifest is deprecated; import from auditor.batch.manifest (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
