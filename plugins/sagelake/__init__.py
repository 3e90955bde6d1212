"""sagelake: one Airflow pipeline, two targets (local and AWS).

Operators, hooks and local engines used by the DAGs in ``dags/``. Importing the package makes the
process's botocore sessions share one data loader (:mod:`sagelake.config.botocore_data`).
"""

from sagelake.config.botocore_data import share_loaders

share_loaders()
