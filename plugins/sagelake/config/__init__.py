"""Configuration: the deployment target, pipeline settings from the environment, DAG params, and the
process's AWS SDK data loader."""
