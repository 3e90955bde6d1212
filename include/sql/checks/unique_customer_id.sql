-- description: Exactly one row per customer (no duplicate customer_id)
-- severity: error
-- expect: value == 0
SELECT count(*) - count(DISTINCT customer_id) AS value
FROM {{ params.glue_database }}.churn_features_staged
WHERE dt = '{{ params.dt or ds }}'
