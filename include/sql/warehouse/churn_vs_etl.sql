-- Analytics: churn by day and plan from the warehouse, beside what the Glue ETL counted for the same days
-- (the etl_metrics external table, read through Spectrum), for the days from dt_from to dt.
{% set load = ti.xcom_pull(task_ids='plan_load') %}
WITH etl AS (
    SELECT dt, MAX(features_rows) AS features_rows, MAX(quarantined) AS quarantined
    FROM {{ warehouse.spectrum_schema }}.etl_metrics
    WHERE dt BETWEEN '{{ load.dt_from }}' AND '{{ load.dt }}'
    GROUP BY dt
)
SELECT
    TO_CHAR(w.dt, 'YYYY-MM-DD') AS dt,
    w.plan,
    COUNT(*) AS customers,
    SUM(w.churned) AS churned,
    ROUND(AVG(w.churned::DOUBLE PRECISION), 4) AS churn_rate,
    ROUND(AVG(w.monthly_fee), 2) AS avg_monthly_fee,
    MAX(e.features_rows) AS etl_features_rows,
    MAX(e.quarantined) AS etl_quarantined
FROM public.{{ warehouse.warehouse_table }} AS w
JOIN etl AS e ON e.dt = TO_CHAR(w.dt, 'YYYY-MM-DD')
WHERE w.dt BETWEEN '{{ load.dt_from }}'::DATE AND '{{ load.dt }}'::DATE
GROUP BY 1, 2
ORDER BY 1, 2
