-- hancha: webhooks, the county systems' endpoints that events are pushed to (signed, in order,
-- one event per request; see README "Webhooks").
--
-- Everything a replica needs to deliver lives here, so that any replica picks up where another
-- left off: the endpoint and its filter, its signing secrets, its cursor in the event stream
-- (the audit chain position of the last event it acknowledged), and its retry state. A replica
-- delivers to an endpoint only while it holds the endpoint's lease (`lease_owner`,
-- `lease_until`), taken with FOR UPDATE SKIP LOCKED, so two replicas never deliver to the same
-- endpoint at once.
CREATE TABLE webhook_endpoints (
    id              bigserial PRIMARY KEY,
    url             text NOT NULL,
    -- event type wire names (`inquiry.received`, ...); empty: every type
    event_types     text[] NOT NULL DEFAULT '{}',
    -- only this township's events (9-digit code); NULL: the whole county
    township        text CHECK (township ~ '^[0-9]{9}$'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text NOT NULL,
    disabled_at     timestamptz,
    -- the chain position of the last event delivered (or passed over by the filter)
    cursor          bigint NOT NULL CHECK (cursor >= 0),
    delivered       bigint NOT NULL DEFAULT 0,
    -- failed attempts at the event after the cursor (0 once it is delivered)
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    failing_since   timestamptz,
    last_status     integer,
    last_error      text,
    last_success_at timestamptz,
    lease_owner     uuid,
    lease_until     timestamptz
);
CREATE INDEX webhook_endpoints_due ON webhook_endpoints (next_attempt_at) WHERE disabled_at IS NULL;

-- Signing secrets (`whsec_` + base64 of 32 random bytes), several while a rotation overlaps:
-- every secret not expired signs each request. Kept here so that every replica signs with them.
CREATE TABLE webhook_secrets (
    id          bigserial PRIMARY KEY,
    endpoint_id bigint NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    secret      text NOT NULL CHECK (secret LIKE 'whsec\_%'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz
);
CREATE INDEX webhook_secrets_endpoint ON webhook_secrets (endpoint_id);

-- The latest delivery attempts per endpoint (a bounded log: older ones are dropped as new ones
-- are written), for `hancha webhooks list`.
CREATE TABLE webhook_attempts (
    id          bigserial PRIMARY KEY,
    endpoint_id bigint NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    position    bigint NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    -- delivered | http_status | redirect | timeout | connect | tls | other
    result      text NOT NULL,
    status      integer,
    error       text,
    elapsed_ms  integer NOT NULL
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id DESC);
