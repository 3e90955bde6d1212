-- Redshift Spectrum: the lake's Glue database as an external schema (read-only, idempotent).
-- The IAM role lets Redshift read the Glue Data Catalog and the lake's S3 objects.
{% set load = ti.xcom_pull(task_ids='plan_load') %}
CREATE EXTERNAL SCHEMA IF NOT EXISTS {{ warehouse.spectrum_schema }}
FROM DATA CATALOG DATABASE '{{ params.glue_database }}'
IAM_ROLE '{{ load.iam_role }}'
