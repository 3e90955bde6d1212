"""Configuration: the deployment target, pipeline settings from the environment, and DAG params."""
