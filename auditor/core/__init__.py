"""The contract between the host and its plugins: hook specifications, the Attack base class, capabilities,
result models, metric declarations, the copy rule's severity, errors. Imports nothing else from auditor."""
