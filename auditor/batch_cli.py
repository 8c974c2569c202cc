"""Deprecated location: ``auditor.batch_cli`` moved to :mod:`auditor.cli.batch`; this alias keeps old imports working."""
import sys
import warnings

import auditor.cli.batch as _moved

warnings.warn("auditor.batch_cli is deprecated; import from auditor.cli.batch (or the public API: `from auditor import ...`)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
