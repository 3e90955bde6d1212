-- description: Few customers have no events at all (events may be arriving late)
-- severity: warn
-- expect: value <= 0.2
SELECT coalesce(avg(CASE WHEN n_events = 0 THEN 1.0 ELSE 0.0 END), 0.0) AS value
FROM {{ params.glue_database }}.churn_features_staged
WHERE dt = '{{ params.dt or ds }}'
