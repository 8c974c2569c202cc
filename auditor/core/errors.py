"""Exceptions with documented exit codes."""
from __future__ import annotations


class AuditorError(Exception):
    """Base class. ``exit_code`` is what ``audit`` exits with when this escapes a command."""

    exit_code = 2


class UsageError(AuditorError):
    """Bad command line or configuration."""


class ModelLoadError(AuditorError):
    """The model file or source cannot be loaded safely."""


class DataError(AuditorError):
    """The data the auditor holds is missing, malformed, or disagrees with the model."""


class CapabilityError(AuditorError):
    """The model lacks something an attack needs (for example gradients)."""


class PluginLoadError(AuditorError):
    """A plugin failed to import or registered something invalid."""


class AttackTimeout(Exception):
    """An attack ran past its time budget; the runner records it as failed."""
