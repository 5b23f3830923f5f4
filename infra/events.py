"""The hub's custom EventBridge bus and an archive of everything published on it, for replay."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from constructs import Construct


class HubEvents(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, prefix: str, archive_retention_days: int = 365
    ):
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(
            self, "Bus", event_bus_name=f"{prefix}-events", description="pshub business events"
        )
        # Every event on the bus comes from this account (the hub's own publishers): the pattern takes all.
        self.archive = self.bus.archive(
            "Archive",
            archive_name=f"{prefix}-events-all",
            description="Every hub business event, for replay",
            event_pattern=events.EventPattern(account=[Stack.of(self).account]),
            retention=Duration.days(archive_retention_days),
        )
