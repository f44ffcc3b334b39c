"""The service API: every action the CLI, the dashboard and the tests take is one method here.

Each method authorises the acting user inside the same transaction as its change, and appends
its audit event in that transaction too, so a change and its record land together or not at all.
The actions are grouped by area in the modules of this package, each area's class naming the areas it
calls as its bases; `Service` is all of them, and composes the retraining a job runs (`Retraining`) from them.
"""

from typing import Any

from governance.service.audit import verify_audit_export
from governance.service.auth import Credential
from governance.service.base import ServiceBase, check_name
from governance.service.evaluations import EvaluationActions
from governance.service.gates import GateActions, GateOutcome
from governance.service.jobs import JobActions
from governance.service.labels import LabelActions
from governance.service.readiness import ReadinessActions
from governance.service.registry import RISK_TIERS
from governance.service.reports import ReportActions
from governance.service.retraining import Retraining
from governance.service.reviews import ReviewActions
from governance.service.training import TrainingActions
from governance.service.users import Bootstrap, UserActions


class Service(UserActions, TrainingActions, ReportActions, LabelActions, EvaluationActions, GateActions,
              ReviewActions, JobActions, ReadinessActions):
    """One installation seen by one acting user (`actor`, None only for store-level commands)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retraining = Retraining(base=self, registry=self, training=self, evaluations=self, gates=self,
                                     reviews=self)


__all__ = ["Bootstrap", "Credential", "GateOutcome", "Service", "ServiceBase", "RISK_TIERS", "check_name",
           "verify_audit_export"]
