-- description: Quality-check verdicts per day and check over the date range, with the bytes each scanned
SELECT
    dt,
    check_name,
    severity,
    count(*) AS runs,
    sum(CASE WHEN verdict = 'fail' THEN 1 ELSE 0 END) AS failures,
    max(value) AS last_max_value,
    sum(bytes_scanned) AS bytes_scanned
FROM {{ database }}.quality_results
WHERE dt BETWEEN '{{ start }}' AND '{{ end }}'
GROUP BY dt, check_name, severity
ORDER BY dt, check_name
