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
DEFAULT_ERP_POOL_LIMIT = 5  # NetSuite's base tier; Business Central runs 5 requests at once per user
DEFAULT_POSTING_MAX_CONCURRENCY = 10
DEFAULT_SWEEP_MINUTES = 15
DEFAULT_WORKER_SYNC_MINUTES = 60  # new hires, leavers, transfers and rate changes in the PSA within the hour
# The nightly assignment sweep (EventBridge cron, UTC): after the PSA's day, before delivery managers' morning.
DEFAULT_ASSIGNMENT_SWEEP_CRON = "cron(0 2 * * ? *)"
# A project's planned margin below this (a fraction of revenue) alerts the delivery managers, unless the project
# or its legal entity has a floor of its own (the planning table).
DEFAULT_MARGIN_FLOOR = "0.20"

_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,39}$")
_SYSTEM_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_ORG_ID = re.compile(r"^[A-Za-z0-9]{15,18}$")  # the same rule as CrmWebhookSettings.crm_org_id
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# EventBridge's six fields: minutes hours day-of-month month day-of-week year.
_CRON = re.compile(r"^cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)$")
# The same rule as MarginConsumerSettings.default_margin_floor: a fraction 0..1, at most four decimals.
_MARGIN_FLOOR = re.compile(r"^0?\.[0-9]{1,4}$|^1(\.0+)?$|^0$")

# Who alerts are routed to (one SNS topic each, infra/monitoring.py): deals that did not become projects,
# the platform itself being unhealthy, time or expenses that did not reach the ledger (and projects whose
# margin cannot be computed from finance's data), and projects whose planned margin fell below its floor.
AUDIENCES = ("sales-ops", "integration-engineers", "finance-ops", "delivery-managers")


class ConfigError(ValueError):
    """A context value the hub cannot be deployed with."""


class MissingSourceError(FileNotFoundError):
    """Something synth packages is missing; the message says which command produces it."""


@dataclass(frozen=True)
class ErpPool:
    """The concurrency pool an ERP system id draws on: system ids reaching one NetSuite account share it."""

    pool: str
    limit: int


@dataclass(frozen=True)
class HubConfig:
    stack_name: str = DEFAULT_STACK_NAME
    erp_systems: tuple[str, ...] = DEFAULT_ERP_SYSTEMS
    crm_org_id: str = DEFAULT_CRM_ORG_ID
    # system id -> its pool; a system not named gets a pool of its own with the default limit.
    erp_pools: Mapping[str, ErpPool] | None = None
    posting_max_concurrency: int = DEFAULT_POSTING_MAX_CONCURRENCY
    sweep_minutes: int = DEFAULT_SWEEP_MINUTES
    worker_sync_minutes: int = DEFAULT_WORKER_SYNC_MINUTES
    # The whole EventBridge expression, as the rule takes it: "cron(0 2 * * ? *)" (UTC).
    assignment_sweep_cron: str = DEFAULT_ASSIGNMENT_SWEEP_CRON
    # A decimal string, never a float: it reaches MarginConsumerSettings.default_margin_floor unchanged.
    default_margin_floor: str = DEFAULT_MARGIN_FLOOR

    def pool_of(self, system: str) -> ErpPool:
        return (self.erp_pools or {}).get(system) or ErpPool(pool=system, limit=DEFAULT_ERP_POOL_LIMIT)

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
        for system, pool in (self.erp_pools or {}).items():
            if system not in self.erp_systems:
                raise ConfigError(f"erpPools: {system!r} is not one of erpSystems {list(self.erp_systems)}")
            if not _SYSTEM_ID.match(pool.pool) or not 1 <= pool.limit <= 100:
                raise ConfigError(
                    f"erpPools.{system}: pool must be a system-id-like name and limit 1..100, got {pool}"
                )
        if not 2 <= self.posting_max_concurrency <= 1000:  # Lambda's bounds for an SQS event source
            raise ConfigError(f"postingMaxConcurrency {self.posting_max_concurrency}: give 2..1000")
        if not 1 <= self.sweep_minutes <= 1440:
            raise ConfigError(f"sweepMinutes {self.sweep_minutes}: give 1..1440")
        if not 1 <= self.worker_sync_minutes <= 1440:
            raise ConfigError(f"workerSyncMinutes {self.worker_sync_minutes}: give 1..1440")
        cron = _CRON.match(self.assignment_sweep_cron)
        # EventBridge takes "?" in exactly one of day-of-month and day-of-week.
        if not cron or (cron.group(3) == "?") == (cron.group(5) == "?"):
            raise ConfigError(
                f"assignmentSweepCron {self.assignment_sweep_cron!r}: give an EventBridge cron expression "
                f"(UTC; '?' in day-of-month or day-of-week), e.g. {DEFAULT_ASSIGNMENT_SWEEP_CRON!r}"
            )
        if not _MARGIN_FLOOR.match(self.default_margin_floor):
            raise ConfigError(
                f"defaultMarginFloor {self.default_margin_floor!r}: give a fraction of revenue between 0 and 1 "
                f"with at most four decimals, e.g. {DEFAULT_MARGIN_FLOOR!r}"
            )

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> HubConfig:
        systems = context.get("erpSystems", DEFAULT_ERP_SYSTEMS)
        if isinstance(systems, str):  # `-c erpSystems='["a","b"]'` or `-c erpSystems=a,b`
            systems = json.loads(systems) if systems.strip().startswith("[") else systems.split(",")
        pools = context.get("erpPools") or {}
        if isinstance(pools, str):
            pools = json.loads(pools)
        if not isinstance(pools, Mapping):
            raise ConfigError('erpPools: give {system: {"pool": name, "limit": n}}')
        try:
            erp_pools = {
                str(system): ErpPool(pool=str(value["pool"]), limit=int(value["limit"]))
                for system, value in pools.items()
            }
            concurrency = int(context.get("postingMaxConcurrency", DEFAULT_POSTING_MAX_CONCURRENCY))
            sweep_minutes = int(context.get("sweepMinutes", DEFAULT_SWEEP_MINUTES))
            worker_sync_minutes = int(context.get("workerSyncMinutes", DEFAULT_WORKER_SYNC_MINUTES))
        except (KeyError, TypeError, ValueError) as error:
            raise ConfigError(
                f"erpPools, postingMaxConcurrency, sweepMinutes or workerSyncMinutes: {error}"
            ) from error
        return cls(
            stack_name=str(context.get("stackName", DEFAULT_STACK_NAME)),
            erp_systems=tuple(str(s).strip() for s in systems),
            crm_org_id=str(context.get("crmOrgId", DEFAULT_CRM_ORG_ID)),
            erp_pools=erp_pools,
            posting_max_concurrency=concurrency,
            sweep_minutes=sweep_minutes,
            worker_sync_minutes=worker_sync_minutes,
            assignment_sweep_cron=str(
                context.get("assignmentSweepCron", DEFAULT_ASSIGNMENT_SWEEP_CRON)
            ).strip(),
            default_margin_floor=str(context.get("defaultMarginFloor", DEFAULT_MARGIN_FLOOR)).strip(),
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
