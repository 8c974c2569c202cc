"""Deprecated location: ``auditor.audit_setup`` moved to :mod:`auditor.engine.audit_setup`; this alias keeps old imports working."""
import sys
import warnings

import auditor.engine.audit_setup as _moved

warnings.warn("auditor.audit_setup is deprecated; import from auditor.engine.audit_setup (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
