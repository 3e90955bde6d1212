-- description: Churn rate is plausible (the label is neither missing nor degenerate)
-- severity: error
-- expect: value between 0.03 and 0.6
SELECT coalesce(avg(CAST(churned AS double)), 0.0) AS value
FROM {{ params.glue_database }}.churn_features_staged
WHERE dt = '{{ params.dt or ds }}'
