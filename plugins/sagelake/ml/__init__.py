"""Machine learning: SageMaker request builders, resource names, artefacts, approval, lifecycle steps."""
