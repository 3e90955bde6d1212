-- description: Curated partition has enough customers to train on
-- severity: error
-- expect: value >= 500
SELECT count(*) AS value
FROM {{ params.glue_database }}.churn_features_staged
WHERE dt = '{{ params.dt or ds }}'
