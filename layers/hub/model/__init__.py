"""The canonical model: the hub's own business schema, independent of any vendor."""

from hub.model.canonical import (
    Account,
    BillingSchedule,
    BillingType,
    Contact,
    LegalEntity,
    LineItem,
    Milestone,
    Money,
    Opportunity,
    Project,
    WbsTask,
)
from hub.model.envelope import EventEnvelope

__all__ = [
    "Account",
    "BillingSchedule",
    "BillingType",
    "Contact",
    "EventEnvelope",
    "LegalEntity",
    "LineItem",
    "Milestone",
    "Money",
    "Opportunity",
    "Project",
    "WbsTask",
]
