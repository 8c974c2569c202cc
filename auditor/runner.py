"""Deprecated location: ``auditor.runner`` moved to :mod:`auditor.engine.runner`; this alias keeps old imports working."""
import sys
import warnings

import auditor.engine.runner as _moved

warnings.warn("auditor.runner is deprecated; import from auditor.engine.runner (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
