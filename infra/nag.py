"""cdk-nag acknowledgements (cdk-nag 3.x: CDK's own ``Validations.of(scope).acknowledge``).

Always one rule (or one finding, ``Rule[finding]``) with its reason, on the narrowest construct that needs it.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))
