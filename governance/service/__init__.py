"""The service API: every action the CLI, the dashboard and the tests take is one method here.

Each method authorises the acting user inside the same transaction as its change, and appends
its audit event in that transaction too, so a change and its record land together or not at all.
The actions are grouped by area in the modules of this package; `Service` is all of them.
"""

from governance.service.audit import AuditActions, verify_audit_export
from governance.service.base import ServiceBase, check_name
from governance.service.evaluations import EvaluationActions
from governance.service.gates import GateActions, GateOutcome
from governance.service.jobs import JobActions
from governance.service.registry import RISK_TIERS, RegistryActions
from governance.service.releases import ReleaseActions
from governance.service.reviews import ReviewActions
from governance.service.training import TrainingActions
from governance.service.users import Bootstrap, UserActions
from governance.service.auth import Credential


class Service(UserActions, RegistryActions, EvaluationActions, GateActions, ReviewActions, ReleaseActions,
              TrainingActions, JobActions, AuditActions):
    """One installation seen by one acting user (`actor`, None only for store-level commands)."""


__all__ = ["Bootstrap", "Credential", "GateOutcome", "Service", "ServiceBase", "RISK_TIERS", "check_name", "verify_audit_export"]
