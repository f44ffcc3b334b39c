"""The auditor's dossier: documents (model card, Annex IV, validation report, bias audit) generated only
from stored evidence, every figure citing the audit event it comes from, verifiable against an export."""

from governance.dossier.sections import KIND_NAMES

EVIDENCE = "evidence.json"
DOSSIER_FORMAT = "govern-dossier/1"

__all__ = ["DOSSIER_FORMAT", "EVIDENCE", "KIND_NAMES"]
