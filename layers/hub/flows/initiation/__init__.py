"""Closed-won opportunity -> customer, project, WBS, billing schedule (the project-initiation flow)."""

FLOW = "project-initiation"
