-- description: No NULL or negative key features, labels are 0/1, categories are known
-- severity: error
-- expect: value == 0
SELECT count_if(
    customer_id IS NULL
    OR plan IS NULL OR plan NOT IN ('basic', 'standard', 'premium')
    OR region IS NULL OR region NOT IN ('north', 'south', 'east', 'west')
    OR monthly_fee IS NULL OR monthly_fee < 0
    OR age IS NULL OR age < 0
    OR support_tickets IS NULL OR support_tickets < 0
    OR tenure_days IS NULL OR tenure_days < 0
    OR n_events IS NULL OR n_events < 0
    OR total_amount IS NULL OR total_amount < 0
    OR avg_session_s IS NULL OR avg_session_s < 0
    OR churned IS NULL OR churned NOT IN (0, 1)
) AS value
FROM {{ params.glue_database }}.churn_features_staged
WHERE dt = '{{ params.dt or ds }}'
