"""Developer tooling, never shipped to Airflow: local stack launcher, demo, clients, data generator.

Importable by the Makefile, tests and benchmarks; never by DAGs or by anything under ``plugins/``.
"""
