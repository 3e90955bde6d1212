-- description: Customers and churn rate by plan and region over the date range (published partitions)
SELECT
    plan,
    region,
    count(*) AS customers,
    round(avg(CAST(churned AS double)), 4) AS churn_rate,
    round(avg(monthly_fee), 2) AS avg_monthly_fee
FROM {{ database }}.churn_features
WHERE dt BETWEEN '{{ start }}' AND '{{ end }}'
GROUP BY plan, region
ORDER BY plan, region
