-- description: Columns the crawler found in raw/ that differ from the dataset contracts (added, missing or retyped; listed in crawler_drift)
-- severity: warn
-- expect: value == 0
SELECT coalesce(sum(columns_differing), 0) AS value
FROM {{ params.glue_database }}.crawler_drift
WHERE dt = '{{ params.dt or ds }}'
