"""Report templates, importable as ``auditor_reports`` so jinja2's PackageLoader finds ``templates/``."""
