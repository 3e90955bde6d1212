-- description: Raw files carry no columns the dataset contracts do not declare (schema drift is reported, not fatal)
-- severity: warn
-- expect: value == 0
SELECT coalesce(max(schema_drift_columns), 0) AS value
FROM {{ params.glue_database }}.etl_metrics_staged
WHERE dt = '{{ params.dt or ds }}'
