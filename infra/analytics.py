"""S3: the analytics bucket, where the hub appends the business records a lake query engine reads.

``margins/date=YYYY-MM-DD/hour=HH/<uuid>.jsonl``: every ``ProjectMarginChanged`` the margin consumer computes
(one object per batch, never overwritten). Private (every public-access block on, object ACLs disabled),
TLS-only, S3-managed encryption, versioned (an object deleted or overwritten by mistake can be restored), kept
when the stack goes (``RETAIN``: the records outlive the stack, like the ledger).

Lifecycle: objects stay in S3 Standard (they are a few kilobytes each: Infrequent Access and Intelligent-Tiering
bill or monitor objects under 128 KB as if they were larger, so a transition would cost more than it saves);
versions replaced or deleted go after 90 days, and so do the delete markers they leave; an interrupted upload
is cleaned up after a day.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.nag import acknowledge

# The key prefix the margin consumer writes under (functions/margin_consumer/handler.py export_key).
MARGINS_PREFIX = "margins"
NONCURRENT_RETENTION = Duration.days(90)


class Analytics(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        # No bucket name: S3 names are global, CloudFormation generates a unique one (output AnalyticsBucketName).
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-replaced-versions",
                    noncurrent_version_expiration=NONCURRENT_RETENTION,
                    expired_object_delete_marker=True,
                ),
                s3.LifecycleRule(
                    id="abort-interrupted-uploads",
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                ),
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "Only the hub's margin consumer writes here (s3:PutObject under margins/ granted to its role "
            "alone), and every write is the record of a margin the ledger and the planning table also hold. "
            "Server access logs would need a second bucket for no reader; CloudTrail data events are the "
            "firm's choice if it wants object-level audit.",
        )

    def grant_put_margins(self, role: iam.Role) -> iam.Grant:
        """``s3:PutObject`` under ``margins/`` only: no read, no delete, no other prefix, no ACL or tagging."""
        grant = iam.Grant.add_to_principal(
            grantee=role,
            actions=["s3:PutObject"],
            resource_arns=[self.bucket.arn_for_objects(f"{MARGINS_PREFIX}/*")],
        )
        stack = Stack.of(self)
        bucket_id = stack.resolve(stack.get_logical_id(self.bucket.node.default_child))
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{MARGINS_PREFIX}/*]",
            "Every object key is new (date and hour partitions, a random name), so the grant cannot name "
            f"objects: it is one action, s3:PutObject, on the {MARGINS_PREFIX}/ prefix of this bucket only.",
        )
        return grant
