-- description: Quarantined records per day, source and reason over the date range
SELECT
    dt,
    source,
    reason,
    count(*) AS records
FROM {{ database }}.churn_quarantine
WHERE dt BETWEEN '{{ start }}' AND '{{ end }}'
GROUP BY dt, source, reason
ORDER BY dt, source, records DESC, reason
