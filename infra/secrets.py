"""Secrets Manager: the connections the firm fills in after the first deploy.

The template never carries a credential. Each secret starts with a placeholder value that states its shape
(CloudFormation requires some value), is kept when the stack goes (``RETAIN``) and is never regenerated, so
a later deploy does not overwrite what ops filled in as long as the placeholder stays the same.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from aws_cdk import RemovalPolicy, SecretValue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.nag import acknowledge

# hub.webhooks.signing_secrets reads {"secrets": [...]}; an empty list rejects every delivery until filled.
WEBHOOK_PLACEHOLDER = {"secrets": []}
CONNECTION_PLACEHOLDER: dict[str, str] = {}


class HubSecrets(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, prefix: str, erp_systems: Sequence[str]
    ) -> None:
        super().__init__(scope, construct_id)
        self.webhook = self._secret(
            "CrmWebhook",
            f"{prefix}/webhooks/crm",
            'Standard Webhooks signing secrets of the CRM sender: {"secrets": ["whsec_..."]}; '
            "list two during a rotation",
            WEBHOOK_PLACEHOLDER,
        )
        self.psa_webhook = self._secret(
            "PsaWebhook",
            f"{prefix}/webhooks/psa",
            "Standard Webhooks signing secrets of the PSA sender (time and expense approvals): "
            '{"secrets": ["whsec_..."]}; list two during a rotation',
            WEBHOOK_PLACEHOLDER,
        )
        self.crm = self._secret(
            "Crm",
            f"{prefix}/crm/salesforce",
            "Salesforce connection (OAuth client credentials)",
            CONNECTION_PLACEHOLDER,
        )
        self.psa = self._secret(
            "Psa", f"{prefix}/psa/kantata", "Kantata OX connection (bearer token)", CONNECTION_PLACEHOLDER
        )
        self.hcm = self._secret(
            "Hcm",
            f"{prefix}/hcm/workday",
            "Workday connection (API client for integrations: client id and secret, the integration user's "
            "refresh token, the worker-changes report's owner, company -> legal entity map)",
            CONNECTION_PLACEHOLDER,
        )
        self.erp = {
            system: self._secret(
                f"Erp-{system}",
                f"{prefix}/erp/{system}",
                f"ERP connection of system {system} (as named in the routing table)",
                CONNECTION_PLACEHOLDER,
            )
            for system in erp_systems
        }
        acknowledge(
            self,
            "AwsSolutions-SMG4",
            "Third-party credentials (CRM, PSA, HCM, ERP, webhook signing secrets) are issued and rotated in "
            "the vendors' consoles; Secrets Manager cannot rotate them. Ops update the value in place.",
        )

    def _secret(
        self, construct_id: str, name: str, description: str, placeholder: object
    ) -> secretsmanager.Secret:
        return secretsmanager.Secret(
            self,
            construct_id,
            secret_name=name,
            description=f"{description}. Filled in by ops after deploy.",
            # Not a credential: the empty shape the value must take. No generated value in the template.
            secret_string_value=SecretValue.unsafe_plain_text(json.dumps(placeholder)),
            removal_policy=RemovalPolicy.RETAIN,
        )

    def grant_read_connections(self, grantee: iam.IGrantable) -> None:
        for secret in (self.crm, self.psa, *self.erp.values()):
            secret.grant_read(grantee)
