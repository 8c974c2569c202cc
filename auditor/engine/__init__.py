"""The audit engine: configuration, the plugin manager and attack registry, the ``AuditRun`` context, the runner
and the Python entry point ``audit()``."""
