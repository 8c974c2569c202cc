"""Pytest fixtures for plugin tests (``tiny_classifier``, ``audit_data``, ``plugin_manager``, ``run_attack``): a public
module, implemented in :mod:`auditor.lab.testing` (``pytest_plugins = ["auditor.testing"]``)."""
import sys

import auditor.lab.testing as _testing

sys.modules[__name__] = _testing
