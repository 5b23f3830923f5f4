"""The local stack: the deployed stack, on one machine, with no AWS account.

1. synthesize the CDK app (``python app.py``, no CDK CLI);
2. deploy the template into an embedded moto server, a process of its own (``local/embedded_aws.py``), by
   CloudFormation ``create_stack`` (``infra/local_deploy.py``);
3. run each Lambda's real handler in this process when moto invokes it (``local/lambda_runtime.py``);
4. fill moto's gaps from the same template: the API routes served on loopback (``local/api_server.py``),
   SQS event source mappings polled with partial batch failures (``local/pollers.py``);
5. talk to the sandboxes (SaaS simulators on loopback), whose URLs go into the connection secrets.

Everything the hub does goes through the deployed resources: boto3 and the AWS CLI with ``--endpoint-url``
see the same queues, tables and executions.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local import finance_config, lambda_runtime, workforce_config
from local.api_server import ApiServer
from local.embedded_aws import EmbeddedAws
from local.finance_config import ENTITIES
from local.pollers import Mapping, QueuePoller
from local.sandboxes.base import Faults
from local.sandboxes.business_central import BusinessCentralSandbox
from local.sandboxes.kantata import KantataSandbox
from local.sandboxes.netsuite import NetSuiteSandbox
from local.sandboxes.salesforce import SalesforceSandbox
from local.sandboxes.server import SandboxServer
from local.sandboxes.workday import WorkdaySandbox
from local.template import Template

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "local"
STACK_NAME = "pshub"
REGION = "us-east-1"
ORG_ID = "00D000000000001AAA"  # cdk.json crmOrgId


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def synthesize(outdir: Path) -> Path:
    """``python app.py`` into ``outdir`` (a subprocess: jsii's node runtime stays out of this process)."""
    env = dict(
        os.environ,
        CDK_OUTDIR=str(outdir),
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
        JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION="1",
    )
    done = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"synth failed:\n{done.stdout}\n{done.stderr}")
    return outdir


@dataclass
class Sandboxes:
    salesforce: SalesforceSandbox
    kantata: KantataSandbox
    netsuite: dict[str, NetSuiteSandbox]
    business_central: dict[str, BusinessCentralSandbox] = field(default_factory=dict)
    workday: WorkdaySandbox = field(default_factory=WorkdaySandbox)
    servers: dict[str, SandboxServer] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        *,
        seed: int = 7,
        erp_faults: Faults | None = None,
        psa_faults: Faults | None = None,
        erp_concurrency: int = 5,
    ) -> Sandboxes:
        return cls(
            salesforce=SalesforceSandbox(org_id=ORG_ID, id_seed=seed),
            kantata=KantataSandbox(faults=psa_faults, id_seed=seed),
            netsuite={
                "netsuite-us": NetSuiteSandbox(
                    "TSTDRV-US",
                    subsidiaries={"1": "Hub Consulting Inc."},
                    concurrency_limit=erp_concurrency,
                    faults=erp_faults,
                ),
                "netsuite-uk": NetSuiteSandbox(
                    "TSTDRV-UK",
                    subsidiaries={"2": "Hub Consulting Ltd"},
                    concurrency_limit=erp_concurrency,
                    faults=erp_faults,
                ),
            },
            business_central={
                "bc-eu": BusinessCentralSandbox(
                    companies=(finance_config.BC_COMPANY,),
                    local_currency="EUR",
                    concurrency_limit=erp_concurrency,
                    faults=erp_faults,
                )
            },
        )

    def start(self) -> Sandboxes:
        for name, sandbox in self.all().items():
            self.servers[name] = SandboxServer(sandbox).start()
        return self

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()

    def all(self) -> dict[str, Any]:
        return {
            "salesforce": self.salesforce,
            "kantata": self.kantata,
            **self.netsuite,
            **self.business_central,
            "workday": self.workday,
        }

    def erp(self, system: str) -> NetSuiteSandbox | BusinessCentralSandbox:
        return self.netsuite.get(system) or self.business_central[system]

    def url(self, name: str) -> str:
        return self.servers[name].url


class LocalStack:
    """``with LocalStack().start() as stack:`` the hub, deployed into moto, served on loopback."""

    def __init__(
        self,
        *,
        sandboxes: Sandboxes | None = None,
        workdir: Path = BUILD,
        quiet: bool = True,
        progress: Any = None,
        max_pollers: int = 4,
    ) -> None:
        """``max_pollers``: at most this many concurrent batches per event source mapping (the template's
        ``MaximumConcurrency`` below it is kept); the default spares a 2-core machine, the month-end drain
        asks for the template's own."""
        self.sandboxes = sandboxes or Sandboxes.create()
        self.max_pollers = max_pollers
        self.workdir = workdir
        self.quiet = quiet
        self._progress = progress or (lambda message: None)
        self.outputs: dict[str, str] = {}
        self.webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        self.psa_webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        self.pollers: list[QueuePoller] = []
        self.api: ApiServer | None = None
        self._aws: EmbeddedAws | None = None
        self._runtime: lambda_runtime.RuntimeServer | None = None
        self._saved_env: dict[str, str | None] = {}

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> LocalStack:
        self._progress("starting the sandboxes")
        self.sandboxes.start()
        self._progress("starting the embedded AWS (moto, a process of its own)")
        self._runtime = lambda_runtime.RuntimeServer().start()
        self._aws = EmbeddedAws(free_port(), self._runtime.url, quiet=self.quiet).start()
        self.endpoint = self._aws.endpoint
        self._set_env(
            {
                "MOTO_PORT": str(self._aws.port),
                "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_SESSION_TOKEN": "local",
                "POWERTOOLS_TRACE_DISABLED": "1",
                "POWERTOOLS_METRICS_DISABLED": "1" if self.quiet else "0",
                "LOG_LEVEL": "WARNING" if self.quiet else "INFO",
            }
        )
        self._post_json("/moto-api/config", {"stepfunctions": {"execute_state_machine": True}})
        lambda_runtime.ENV_OVERRIDES.update({"LOG_LEVEL": "WARNING"} if self.quiet else {})
        from aws_lambda_powertools.utilities.parameters import clear_caches
        from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

        from hub import aws
        from hub.settings import load

        # a new deployment: no client, setting or secret provider of an earlier stack in this process
        aws.reset_all()
        load.cache_clear()
        clear_caches()
        DEFAULT_PROVIDERS.clear()  # Powertools' secret provider keeps the boto3 client of its first use

        self._progress("synthesizing the CDK app")
        assembly = synthesize(self.workdir / "cdk.out")
        self._progress("deploying the stack into moto (CloudFormation)")
        import boto3

        from infra.local_deploy import deploy_to_moto

        self.session = boto3.session.Session(region_name=REGION)
        self.outputs = deploy_to_moto(self.session, assembly, STACK_NAME, endpoint_url=self.endpoint)
        physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in self._stack_resources()}
        self.template = Template.load(assembly / f"{STACK_NAME}.template.json", physical)
        self._progress("wiring the handlers, queues and API routes")
        self._register_handlers()
        self._put_secrets()
        self._seed_routing()
        self._seed_posting_config()
        self._seed_planning()
        self._start_pollers()
        self.api = ApiServer(
            self.template.api_routes(),
            self._function_names(),
            self.client("lambda"),
            stage=self.template.api_stage(),
        ).start()
        self._progress("ready")
        return self

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stop()
        if self.api:
            self.api.stop()
        if self._aws:
            self._aws.stop()
        if self._runtime:
            self._runtime.stop()
        self.sandboxes.stop()
        lambda_runtime.clear()
        lambda_runtime.ENV_OVERRIDES.clear()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers -----------------------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        if service == "lambda":  # an invocation may run as long as its function's timeout; never re-sent
            from botocore.config import Config

            config = Config(read_timeout=900, connect_timeout=10, retries={"max_attempts": 1})
            return self.session.client(service, endpoint_url=self.endpoint, config=config)
        return self.session.client(service, endpoint_url=self.endpoint)

    @property
    def api_url(self) -> str:
        assert self.api is not None
        return self.api.url

    @property
    def webhook_url(self) -> str:
        return f"{self.api_url}/v1/webhooks/crm/opportunities"

    @contextlib.contextmanager
    def pollers_paused(self) -> Iterator[None]:
        """No queue is consumed inside the block (messages pile up, as with a disabled event source mapping)."""
        for poller in self.pollers:
            poller.pause()
        try:
            yield
        finally:
            for poller in self.pollers:
                poller.resume()

    def psa_webhook_url(self, kind: str) -> str:
        """``kind``: ``time-entries``, ``expenses`` or ``assignments``."""
        return f"{self.api_url}/v1/webhooks/psa/{kind}"

    def fire_schedule(self, target_function: str, event_id: str | None = None) -> dict[str, Any]:
        """Run what an EventBridge schedule starts (moto stores schedules but never fires them): invoke the
        function of folder ``target_function`` (e.g. ``posting_sweep``) with a scheduled event, as a rule
        of the template targets it. The function's answer."""
        import datetime as dt
        import uuid

        rules = [
            r
            for r in self.template.of_type("AWS::Events::Rule").values()
            if r["Properties"].get("ScheduleExpression")
        ]
        names = self._function_names()
        folders = {
            lid: (r["Properties"].get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME"))
            for lid, r in self.template.of_type("AWS::Lambda::Function").items()
        }
        for rule in rules:
            for target in rule["Properties"].get("Targets", []):
                arn = target.get("Arn", {})
                lid = arn.get("Fn::GetAtt", [None])[0] if isinstance(arn, dict) else None
                if lid and folders.get(lid) == target_function:
                    event = {
                        "version": "0",
                        "id": event_id or str(uuid.uuid4()),
                        "detail-type": "Scheduled Event",
                        "source": "aws.events",
                        "account": "123456789012",
                        "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "region": REGION,
                        "resources": [],
                        "detail": {},
                    }
                    answer = self.client("lambda").invoke(
                        FunctionName=names[lid], Payload=json.dumps(event).encode()
                    )
                    payload = json.loads(answer["Payload"].read() or b"null")
                    if answer.get("FunctionError"):
                        raise RuntimeError(f"{target_function} failed: {payload}")
                    return payload  # type: ignore[no-any-return]
        raise KeyError(f"no schedule targets {target_function}")

    def _set_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def _post_json(self, path: str, body: dict[str, Any]) -> None:
        import httpx

        httpx.post(f"{self.endpoint}{path}", json=body, timeout=10).raise_for_status()

    def _stack_resources(self) -> list[dict[str, Any]]:
        cloudformation = self.client("cloudformation")
        pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=STACK_NAME)
        return [r for page in pages for r in page["StackResourceSummaries"] if r.get("PhysicalResourceId")]

    def _function_names(self) -> dict[str, str]:
        return {lid: self.template.physical[lid] for lid in self.template.of_type("AWS::Lambda::Function")}

    def _register_handlers(self) -> None:
        """Each deployed function runs its own ``functions/<name>/handler.py`` (its folder is its service)."""
        for lid, resource in self.template.of_type("AWS::Lambda::Function").items():
            variables = resource["Properties"].get("Environment", {}).get("Variables", {})
            folder = variables.get("POWERTOOLS_SERVICE_NAME")
            if not folder or not (ROOT / "functions" / folder / "handler.py").exists():
                continue
            lambda_runtime.register(self.template.physical[lid], lambda_runtime.load_handler(folder))

    def _put_secrets(self) -> None:
        sm = self.client("secretsmanager")
        sf = self.sandboxes.salesforce
        sm.put_secret_value(
            SecretId=self.outputs["WebhookSecretArn"],
            SecretString=json.dumps({"secrets": [self.webhook_secret]}),
        )
        sm.put_secret_value(
            SecretId=self.outputs["CrmSecretArn"],
            SecretString=json.dumps(
                {
                    "token_url": f"{self.sandboxes.url('salesforce')}/services/oauth2/token",
                    "client_id": sf.client_id,
                    "client_secret": sf.client_secret,
                }
            ),
        )
        sm.put_secret_value(
            SecretId=self.outputs["PsaSecretArn"],
            SecretString=json.dumps(
                {
                    "base_url": f"{self.sandboxes.url('kantata')}/api/v1",
                    "token": self.sandboxes.kantata.initial_tokens[0],
                    "home_countries": {e["code"]: e["country"] for e in finance_config.ENTITIES},
                    "account_time_zone": self.sandboxes.kantata.time_zone,
                    # the resource pool: new workers are invited at this address, rates in this currency
                    "invitation_email_template": workforce_config.INVITATION_EMAIL_TEMPLATE,
                    "account_currency": workforce_config.PSA_ACCOUNT_CURRENCY,
                }
            ),
        )
        workday = self.sandboxes.workday
        sm.put_secret_value(
            SecretId=self.outputs["HcmSecretArn"],
            SecretString=json.dumps(
                {
                    "base_url": self.sandboxes.url("workday"),
                    "tenant": workday.tenant,
                    "client_id": workday.client_id,
                    "client_secret": workday.client_secret,
                    "refresh_token": workforce_config.WORKDAY_REFRESH_TOKEN,
                    "report_owner": workday.report_owner,
                    "legal_entities": workforce_config.WORKDAY_COMPANIES,
                    "tenant_time_zone": workday.time_zone,
                }
            ),
        )
        sm.put_secret_value(
            SecretId=self.outputs["PsaWebhookSecretArn"],
            SecretString=json.dumps({"secrets": [self.psa_webhook_secret]}),
        )
        erp_arns = json.loads(self.outputs["ErpSecretArns"])
        for system, sandbox in self.sandboxes.netsuite.items():
            base = self.sandboxes.url(system)
            sm.put_secret_value(
                SecretId=erp_arns[system],
                SecretString=json.dumps(
                    {
                        "base_url": base,
                        "token_url": f"{base}/services/rest/auth/oauth2/v1/token",
                        "account_id": sandbox.account_id,
                        "client_id": sandbox.client_id,
                        "client_secret": sandbox.client_secret,
                        "currency_ids": {
                            code: internal_id for internal_id, code in sandbox.currencies.items()
                        },
                        "expense_category_ids": finance_config.NETSUITE_EXPENSE_CATEGORY_IDS,
                        "tax_code_ids": finance_config.NETSUITE_TAX_CODE_IDS[system],
                        "service_item_id": finance_config.NETSUITE_SERVICE_ITEM_ID,
                    }
                ),
            )
        for system, bc in self.sandboxes.business_central.items():
            sm.put_secret_value(
                SecretId=erp_arns[system],
                SecretString=json.dumps(
                    {
                        "kind": "business-central",
                        "tenant_id": bc.tenant_id,
                        "environment": bc.environment,
                        "client_id": bc.client_id,
                        "client_secret": bc.client_secret,
                        "base_url": self.sandboxes.url(system) + bc.api_path,
                        "token_url": self.sandboxes.url(system) + bc.token_path,
                        "expense_accounts": finance_config.BC_EXPENSE_ACCOUNTS,
                        "tax_codes": finance_config.BC_TAX_CODES,
                        "local_currency": "EUR",
                    }
                ),
            )

    def _seed_routing(self) -> None:
        from hub.model import LegalEntity
        from hub.routing import Route, RoutingTable

        table = self.session.resource("dynamodb", endpoint_url=self.endpoint).Table(
            self.outputs["RoutingTableName"]
        )
        routing = RoutingTable(self.outputs["RoutingTableName"], table)
        for e in ENTITIES:
            routing.put_route(
                Route(
                    legal_entity=LegalEntity(
                        code=e["code"],
                        name=e["name"],
                        country=e["country"],
                        functional_currency=e["functional_currency"],
                        timezone=e["timezone"],
                    ),
                    erp_system=e["erp_system"],
                    erp_kind="business-central"
                    if e["erp_system"] in self.sandboxes.business_central
                    else "netsuite",
                    subsidiary_id=e["subsidiary_id"] or self._bc_company(e["erp_system"]),
                    migration_wave=e["wave"],
                )
            )

    def _bc_company(self, system: str) -> str:
        return self.sandboxes.business_central[system].company(finance_config.BC_COMPANY)

    def _seed_posting_config(self) -> None:
        """Each entity's posting policy and tax rules, as finance keeps them (data in the routing table)."""
        from hub.flows.posting.config import TableConfig

        table = self.session.resource("dynamodb", endpoint_url=self.endpoint).Table(
            self.outputs["RoutingTableName"]
        )
        config = TableConfig(
            self.outputs["RoutingTableName"],
            table,
            project_status=lambda _: None,
            task_status=lambda _: None,
        )
        for policy in finance_config.POLICIES:
            config.put_policy(policy)
        for rule in finance_config.TAX_RULES:
            config.put_tax_rule(rule)

    def _seed_planning(self) -> None:
        """FX rates and each entity's margin floor (data in the planning table), the Kantata resource pool's
        custom fields and departments as an administrator sets them up once, and a queue subscribed to the
        delivery managers' topic (what an e-mail subscription would receive), for the demo to read."""
        from hub.planning import PlanningStore

        name = self.outputs["PlanningTableName"]
        store = PlanningStore(name, self.session.resource("dynamodb", endpoint_url=self.endpoint).Table(name))
        store.put_fx(workforce_config.FX_RATES)
        for entity, floor in workforce_config.MARGIN_FLOORS.items():
            store.put_entity_floor(entity, floor)
        workforce_config.prepare_kantata(self.sandboxes.kantata)
        sqs, sns = self.client("sqs"), self.client("sns")
        self.alerts_queue_url = sqs.create_queue(QueueName=f"{STACK_NAME}-delivery-alerts-inbox")["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=self.alerts_queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=self.outputs["DeliveryManagersTopicArn"], Protocol="sqs", Endpoint=inbox_arn)

    def _start_pollers(self) -> None:
        """Replace moto's synchronous SQS->Lambda trigger with pollers built from the template's mappings."""
        sqs = self.client("sqs")  # (moto's own trigger is off in the embedded AWS)
        functions = self._function_names()
        for mapping in self.template.of_type("AWS::Lambda::EventSourceMapping").values():
            props = mapping["Properties"]
            queue_arn = self.template.resolve(props["EventSourceArn"], self._attribute)
            queue_name = queue_arn.rsplit(":", 1)[-1]
            queue_url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
            function_ref = props["FunctionName"]
            function_lid = function_ref["Ref"] if isinstance(function_ref, dict) else function_ref
            self.pollers.append(
                QueuePoller(
                    Mapping(
                        function_name=functions.get(function_lid, function_lid),
                        queue_url=queue_url,
                        queue_arn=queue_arn,
                        batch_size=int(props.get("BatchSize", 10)),
                        max_concurrency=min(
                            self.max_pollers,
                            int((props.get("ScalingConfig") or {}).get("MaximumConcurrency", 2)),
                        ),
                        report_failures="ReportBatchItemFailures"
                        in (props.get("FunctionResponseTypes") or []),
                    ),
                    sqs,
                    self.client("lambda"),
                ).start()
            )

    def _attribute(self, lid: str, name: str) -> str:
        physical = self.template.physical[lid]
        kind = self.template.resources[lid]["Type"]
        if kind == "AWS::SQS::Queue" and name == "Arn":
            return self.client("sqs").get_queue_attributes(QueueUrl=physical, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
        if kind == "AWS::Lambda::Function" and name == "Arn":
            return self.client("lambda").get_function(FunctionName=physical)["Configuration"]["FunctionArn"]
        raise KeyError(f"{lid}.{name}")

    # -- for people and tests ----------------------------------------------------------------------------
    def sign(self, body: bytes, *, msg_id: str | None = None, secret: str | None = None) -> dict[str, str]:
        """Headers of a Standard Webhooks delivery of ``body`` signed with this stack's CRM secret (or
        ``secret``, e.g. ``self.psa_webhook_secret``)."""
        import datetime as dt
        import uuid

        from standardwebhooks.webhooks import Webhook

        msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
        now = dt.datetime.now(dt.UTC)
        signature = Webhook(secret or self.webhook_secret).sign(msg_id, now, body.decode())
        return {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
        }

    def transaction(self, correlation_id: str) -> dict[str, Any] | None:
        from hub.ledger import Ledger

        table = self.session.resource("dynamodb", endpoint_url=self.endpoint).Table(
            self.outputs["LedgerTableName"]
        )
        return Ledger(self.outputs["LedgerTableName"], table).get(correlation_id)

    def wait_for(
        self, correlation_ids: list[str], *, timeout: float = 180, tick: Any = None
    ) -> dict[str, dict]:
        """Poll the ledger until every transaction is COMPLETED, PARKED or IGNORED (or the time is up)."""
        final = {"COMPLETED", "PARKED", "IGNORED"}
        done: dict[str, dict] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(done) < len(set(correlation_ids)):
            for cid in set(correlation_ids) - set(done):
                tx = self.transaction(cid)
                if tx and tx["status"] in final:
                    done[cid] = tx
            if tick:
                tick(len(done))
            time.sleep(0.2)
        return done
