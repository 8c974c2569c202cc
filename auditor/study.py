"""Deprecated location: ``auditor.study`` moved to :mod:`auditor.lab.study`; this alias keeps old imports working."""
import sys
import warnings

import auditor.lab.study as _moved

warnings.warn("auditor.study is deprecated; import from auditor.lab.study (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
