"""The hub's AWS CDK infrastructure: one stack (``infra.stack.HubStack``) wiring one construct per concern."""
