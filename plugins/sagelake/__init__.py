"""sagelake: one Airflow pipeline, two targets (local and AWS).

Operators, hooks and local engines used by the DAGs in ``dags/``.
"""
