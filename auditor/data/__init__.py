"""The data the auditor holds: members and reference images (``auditor.data`` keeps the names it always had)."""
from __future__ import annotations

from auditor.data.sets import (
    AuditData,
    DataConfig,
    LabeledImages,
    assemble_audit_data,
    balanced_subset,
    check_against_model,
    class_count,
    load_audit_data,
    load_data_sets,
    load_images,
)

__all__ = ["AuditData", "DataConfig", "LabeledImages", "assemble_audit_data", "balanced_subset", "check_against_model",
           "class_count", "load_audit_data", "load_data_sets", "load_images"]
