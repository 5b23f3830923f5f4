"""Scheduled sweeps of a vendor's changes: the window a run reads (``windows``) and the watermark it moves
forward in DynamoDB (``watermarks``). Shared by the time-and-expense sweep and the HCM worker sync."""
