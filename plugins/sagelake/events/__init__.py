"""Event-driven runs: EventBridge routing, the webhook served by the Airflow API server, run creation."""
