-- description: Weekly customers, churn rate and activity over the date range (weeks start on Monday)
SELECT
    date_trunc('week', CAST(dt AS date)) AS week,
    count(DISTINCT dt) AS days,
    count(*) AS customer_days,
    round(avg(CAST(churned AS double)), 4) AS churn_rate,
    round(avg(n_events), 2) AS avg_events,
    round(avg(total_amount), 2) AS avg_amount
FROM {{ database }}.churn_features
WHERE dt BETWEEN '{{ start }}' AND '{{ end }}'
GROUP BY date_trunc('week', CAST(dt AS date))
ORDER BY week
