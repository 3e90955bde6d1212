-- Load a day, step 1 of 2 (same transaction as step 2): forget what the warehouse holds for that day.
{% set load = ti.xcom_pull(task_ids='plan_load') %}
DELETE FROM public.{{ warehouse.warehouse_table }}
WHERE dt = '{{ load.dt }}'::DATE
