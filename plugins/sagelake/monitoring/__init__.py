"""Monitoring: the project's CloudWatch metrics (``metrics``) and failure notifications (``notifications``).

See docs/monitoring.md.
"""
