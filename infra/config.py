"""The deployment's own facts, read from CDK context (``cdk.json`` or ``-c key=value``) and checked once."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_STACK_NAME = "pshub"
DEFAULT_ERP_SYSTEMS = ("netsuite-us", "netsuite-uk")
DEFAULT_CRM_ORG_ID = "00D000000000001AAA"

_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,39}$")
_SYSTEM_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_ORG_ID = re.compile(r"^[A-Za-z0-9]{15,18}$")  # the same rule as CrmWebhookSettings.crm_org_id
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# Who alerts are routed to (one SNS topic each, infra/monitoring.py): deals that did not become projects,
# and the platform itself being unhealthy.
AUDIENCES = ("sales-ops", "integration-engineers")


class ConfigError(ValueError):
    """A context value the hub cannot be deployed with."""


class MissingSourceError(FileNotFoundError):
    """Something synth packages is missing; the message says which command produces it."""


@dataclass(frozen=True)
class HubConfig:
    stack_name: str = DEFAULT_STACK_NAME
    erp_systems: tuple[str, ...] = DEFAULT_ERP_SYSTEMS
    crm_org_id: str = DEFAULT_CRM_ORG_ID

    def __post_init__(self) -> None:
        if not _STACK_NAME.match(self.stack_name):
            raise ConfigError(
                f"stackName {self.stack_name!r}: a letter, then letters, digits or '-', at most 40"
            )
        if not self.erp_systems:
            raise ConfigError("erpSystems: list at least one ERP system id")
        for system in self.erp_systems:
            if not _SYSTEM_ID.match(system):
                raise ConfigError(
                    f"erpSystems: {system!r} is not a system id (lower-case letters, digits, '-')"
                )
        if len(set(self.erp_systems)) != len(self.erp_systems):
            raise ConfigError(f"erpSystems: duplicates in {list(self.erp_systems)}")
        if not _ORG_ID.match(self.crm_org_id):
            raise ConfigError(
                f"crmOrgId {self.crm_org_id!r} is not a Salesforce org id (15 or 18 letters/digits)"
            )

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> HubConfig:
        systems = context.get("erpSystems", DEFAULT_ERP_SYSTEMS)
        if isinstance(systems, str):  # `-c erpSystems='["a","b"]'` or `-c erpSystems=a,b`
            systems = json.loads(systems) if systems.strip().startswith("[") else systems.split(",")
        return cls(
            stack_name=str(context.get("stackName", DEFAULT_STACK_NAME)),
            erp_systems=tuple(str(s).strip() for s in systems),
            crm_org_id=str(context.get("crmOrgId", DEFAULT_CRM_ORG_ID)),
        )


def alarm_emails_from_context(value: Any) -> dict[str, tuple[str, ...]]:
    """Context ``alarmEmails``: ``{audience: [email, ...]}`` subscribed to that audience's alert topic.

    Absent or empty: no subscriptions (subscribe tools or people to the topics after deploy). From the CLI:
    ``-c alarmEmails='{"sales-ops": ["salesops@example.com"]}'``.
    """
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ConfigError(f"alarmEmails: not JSON ({error}); give {{audience: [emails]}}") from error
    if not isinstance(value, Mapping):
        raise ConfigError(f"alarmEmails: give {{audience: [emails]}}, not {type(value).__name__}")
    emails: dict[str, tuple[str, ...]] = {}
    for audience, addresses in value.items():
        if audience not in AUDIENCES:
            raise ConfigError(
                f"alarmEmails: unknown audience {audience!r}; the audiences are {list(AUDIENCES)}"
            )
        listed = [addresses] if isinstance(addresses, str) else addresses
        if not isinstance(listed, list | tuple):
            raise ConfigError(f"alarmEmails.{audience}: give a list of email addresses")
        for address in listed:
            if not isinstance(address, str) or not _EMAIL.match(address):
                raise ConfigError(f"alarmEmails.{audience}: {address!r} is not an email address")
        if len(set(listed)) != len(listed):
            raise ConfigError(f"alarmEmails.{audience}: duplicates in {list(listed)}")
        if listed:
            emails[audience] = tuple(listed)
    return emails


@dataclass(frozen=True)
class SourcePaths:
    """Where the stack takes its code from; tests point these elsewhere."""

    functions: Path = ROOT / "functions"
    layers: Path = ROOT / "build" / "layers"
    statemachines: Path = ROOT / "statemachines"


def require(path: Path, what: str, fix: str) -> Path:
    """Fail synth early with a message that says how to fix it."""
    if not path.exists():
        raise MissingSourceError(f"{what} not found at {path}: {fix}")
    return path
