"""``make local``: the local stack, kept running for people and their tools until Ctrl-C.

moto stores EventBridge schedules but never fires them: here the time and expense sweep, the worker sync and
the assignment sweep run once a minute (deployed: every ``sweepMinutes``, 15 by default; hourly; nightly), so an
approval made in the Kantata sandbox without a webhook still reaches the ERP sandbox within a minute or two, a
worker hired in the Workday sandbox reaches Kantata's resource pool, and a changed assignment re-prices its
project.
"""

from __future__ import annotations

import base64
import signal
import threading

from rich.console import Console

from local.scenario import change_body, seed_deals, webhook_record
from local.stack import BUILD, LocalStack

LOCAL_SWEEP_SECONDS = 60.0


def curl_command(stack: LocalStack, body_file: str) -> str:
    """A paste-able shell command that signs ``body_file`` now (Standard Webhooks) and posts it."""
    key = base64.b64decode(stack.webhook_secret.removeprefix("whsec_")).hex()
    return (
        f"B={body_file}; TS=$(date +%s); ID=msg_$(date +%s%N); "
        f'SIG=$( (printf \'%s.%s.\' "$ID" "$TS"; cat "$B") | openssl dgst -sha256 -mac HMAC '
        f"-macopt hexkey:{key} -binary | base64 | tr -d '\\n'); "
        f"curl -sS -X POST {stack.webhook_url} -H 'content-type: application/json' "
        f'-H "webhook-id: $ID" -H "webhook-timestamp: $TS" -H "webhook-signature: v1,$SIG" '
        f'--data-binary @"$B"; echo'
    )


def main() -> int:
    console = Console()
    stack = LocalStack(progress=lambda message: console.print(f"[dim]local stack: {message}[/]"))
    stack.start()
    try:
        sf = stack.sandboxes.salesforce
        deal = seed_deals(sf, 1)[0]
        BUILD.mkdir(parents=True, exist_ok=True)
        body_file = BUILD / "sample-webhook.json"
        body_file.write_bytes(change_body(webhook_record(sf, deal.opportunity_id), ["StageName"]))
        console.rule("pshub local stack")
        console.print(f"API base URL       {stack.api_url}/v1")
        console.print(f"  POST {stack.webhook_url}")
        console.print(f"  GET  {stack.api_url}/v1/transactions/{{correlationId}}  (IAM: sign with SigV4)")
        console.print(f"AWS endpoint       {stack.endpoint}  (moto; any access key, region us-east-1)")
        for name in stack.sandboxes.servers:
            console.print(f"sandbox {name:<12} {stack.sandboxes.url(name)}  (admin: /__sandbox/requests)")
        console.print("\nSend a signed webhook for a seeded closed-won deal:")
        console.print(curl_command(stack, str(body_file)), soft_wrap=True, highlight=False)
        console.print("\nLook inside with the AWS CLI or boto3, for example:")
        console.print(
            f"  aws --endpoint-url {stack.endpoint} --region us-east-1 stepfunctions list-executions "
            f"--state-machine-arn {stack.outputs['ProjectInitiationStateMachineArn']}",
            highlight=False,
        )
        console.print(
            f"  aws --endpoint-url {stack.endpoint} --region us-east-1 dynamodb scan --table-name "
            f"{stack.outputs['LedgerTableName']}",
            highlight=False,
        )
        console.print(
            f"\nTime and expenses: POST {stack.psa_webhook_url('time-entries')} (and .../expenses), "
            f"signed with the PSA webhook secret; the sweep runs every {LOCAL_SWEEP_SECONDS:.0f} s. "
            "Parked entries: python -m local.ops parked --queue posting "
            f"--endpoint-url {stack.endpoint}",
            highlight=False,
        )
        console.print(
            f"\nWorkforce: hire in the Workday sandbox ({stack.sandboxes.url('workday')}); the worker sync and the "
            f"assignment sweep run every {LOCAL_SWEEP_SECONDS:.0f} s; POST "
            f"{stack.psa_webhook_url('assignments')} re-prices a project at once; delivery-manager alerts land "
            f"in the queue {stack.alerts_queue_url}.",
            highlight=False,
        )
        console.print("\nCtrl-C stops it.")
        stopped = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stopped.set())
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        while not stopped.wait(LOCAL_SWEEP_SECONDS):
            for schedule in ("posting_sweep", "worker_sync", "assignment_sweep"):
                try:
                    stack.fire_schedule(schedule)
                except Exception as error:  # the stack keeps serving; the next run reads the window again
                    console.print(f"[yellow]{schedule} failed: {error}[/]")
    finally:
        stack.stop()
    return 0
