# The sagelake image: the official Airflow 3 image plus the project's pinned requirements.
# Code (dags/, plugins/, include/) is bind-mounted by docker-compose.yaml, not baked in.
FROM apache/airflow:3.3.2-python3.11

COPY requirements.txt /requirements.txt

# requirements.txt is a fully pinned lock file that itself pins apache-airflow==3.3.2 (the FROM tag above),
# so pip cannot up- or downgrade Airflow and no separate Airflow constraints file is needed.
RUN pip install --no-cache-dir -r /requirements.txt
