"""Deprecated location: ``auditor.compare`` moved to :mod:`auditor.report.compare`; this alias keeps old imports working."""
import sys
import warnings

import auditor.report.compare as _moved

warnings.warn("auditor.compare is deprecated; import from auditor.report.compare (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
