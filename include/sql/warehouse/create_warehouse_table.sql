-- The warehouse copy of the curated churn features: one row per customer per published day (idempotent).
-- DISTKEY/SORTKEY are physical design only (the local engine drops them; results are the same).
CREATE TABLE IF NOT EXISTS public.{{ warehouse.warehouse_table }} (
    dt              DATE            NOT NULL,
    version         VARCHAR(64)     NOT NULL,
    customer_id     VARCHAR(64)     NOT NULL ENCODE zstd,
    plan            VARCHAR(32),
    region          VARCHAR(32),
    monthly_fee     DOUBLE PRECISION,
    age             DOUBLE PRECISION,
    support_tickets INTEGER,
    tenure_days     INTEGER,
    n_events        BIGINT,
    n_logins        BIGINT,
    n_purchases     BIGINT,
    total_amount    DOUBLE PRECISION,
    avg_session_s   DOUBLE PRECISION,
    churned         INTEGER
)
DISTSTYLE KEY
DISTKEY (customer_id)
SORTKEY (dt, customer_id)
