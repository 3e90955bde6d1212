-- Load a day, step 2 of 2: the published partition of the curated features, read through Spectrum.
-- The partition filter on dt means only that day's registered (published) location is read.
{% set load = ti.xcom_pull(task_ids='plan_load') %}
INSERT INTO public.{{ warehouse.warehouse_table }}
SELECT
    f.dt::DATE,
    '{{ load.version }}',
    f.customer_id,
    f.plan,
    f.region,
    f.monthly_fee,
    f.age,
    f.support_tickets,
    f.tenure_days,
    f.n_events,
    f.n_logins,
    f.n_purchases,
    f.total_amount,
    f.avg_session_s,
    f.churned
FROM {{ warehouse.spectrum_schema }}.churn_features AS f
WHERE f.dt = '{{ load.dt }}'
