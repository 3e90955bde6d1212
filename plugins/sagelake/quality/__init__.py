"""Data quality: declarative checks (``include/sql/checks/``) and their verdicts."""
