-- hancha: the 催办通知书 (reminder notices) issued to inflow women without a valid certificate.
--
-- One row per person and period: a reminder is issued at most once in a period, whoever runs
-- `hancha reminders` and however often. The reference printed on the notice is the county, the
-- period and `number`; it names nobody. Like `persons`, this is the county's own record, not
-- exchange data: it is not erased at an agreement's retention.
CREATE TABLE reminders (
    number          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    resident_id     text NOT NULL CHECK (resident_id ~ '^[0-9]{17}[0-9X]$'),
    -- the reporting period it counts for: 2026Q4, 2026-11 or 2026
    period          text NOT NULL CHECK (period ~ '^[0-9]{4}(Q[1-4]|-[0-9]{2})?$'),
    -- the township office she is to report to (where she lives); NULL when the registry has none
    township        text CHECK (township ~ '^[0-9]{9}$'),
    -- 户籍地: the county that issues her certificate
    origin_county   text NOT NULL CHECK (origin_county ~ '^[0-9]{6}$'),
    -- what the registry showed of her certificate on the day of issue
    missing         text NOT NULL CHECK (missing IN ('not_held', 'expired', 'revoked')),
    issued_at       timestamptz NOT NULL DEFAULT now(),
    -- the operator principal that issued it (`loopback`, or the name in its certificate)
    issued_by       text NOT NULL,
    deadline        date NOT NULL,
    UNIQUE (resident_id, period)
);
CREATE INDEX reminders_period_township ON reminders (period, township);
