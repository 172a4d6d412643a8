-- hancha: one database per county node.
--
-- Sensitive data: resident ID numbers (公民身份号码) live only in `persons` (the county's own
-- registry) and in the subject of exchanged messages, which the node needs to answer them. The
-- audit log refers to messages by id and never stores an ID number.

-- === the county's registry of persons ===================================================
CREATE TABLE persons (
    resident_id              text PRIMARY KEY CHECK (resident_id ~ '^[0-9]{17}[0-9X]$'),
    name                     text NOT NULL,
    sex                      text NOT NULL CHECK (sex IN ('male', 'female')),
    birth_date               date NOT NULL,
    -- inflow: lives here, registered elsewhere; outflow: registered here, lives elsewhere
    flow                     text NOT NULL CHECK (flow IN ('inflow', 'outflow')),
    registered_county        text NOT NULL CHECK (registered_county ~ '^[0-9]{6}$'),
    residence_county         text NOT NULL CHECK (residence_county ~ '^[0-9]{6}$'),
    -- for inflow persons the township/village where they live; for outflow persons the
    -- township/village of registration (the office responsible for them)
    township                 text CHECK (township ~ '^[0-9]{9}$'),
    village                  text CHECK (village ~ '^[0-9]{12}$'),
    marital_status           text CHECK (marital_status IN ('single', 'married', 'divorced', 'widowed')),
    certificate_number       text,
    certificate_valid_until  date,
    certificate_status       text CHECK (certificate_status IN ('valid', 'expired', 'revoked', 'none')),
    children_count           smallint CHECK (children_count >= 0),
    contraception_status     text CHECK (contraception_status IN ('long_acting', 'short_acting', 'none', 'not_applicable')),
    contraception_date       date,
    pregnant                 boolean,
    registered_since         date,
    updated_at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX persons_certificate ON persons (certificate_number) WHERE certificate_number IS NOT NULL;
CREATE INDEX persons_flow_township ON persons (flow, township);

-- === agreements (双向协议): every version both counties signed ==========================
CREATE TABLE agreements (
    agreement_id   text NOT NULL,
    version        integer NOT NULL,
    hash           text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
    peer_county    text NOT NULL CHECK (peer_county ~ '^[0-9]{6}$'),
    valid_from     date NOT NULL,
    valid_until    date NOT NULL,
    source_text    text NOT NULL,
    installed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agreement_id, hash)
);
CREATE INDEX agreements_peer ON agreements (peer_county, valid_until);

-- === inquiries (函查), both directions ===================================================
CREATE TABLE inquiries (
    message_id            uuid PRIMARY KEY,           -- chosen by the author (UUID v7)
    direction             text NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    peer_county           text NOT NULL CHECK (peer_county ~ '^[0-9]{6}$'),
    agreement_id          text NOT NULL,
    agreement_hash        text NOT NULL,
    kind                  text NOT NULL CHECK (kind IN ('certificate_verification', 'outflow_status')),
    priority              text NOT NULL CHECK (priority IN ('normal', 'urgent')),
    subject_id            text NOT NULL CHECK (subject_id ~ '^[0-9]{17}[0-9X]$'),
    subject_certificate   text,
    -- queued: outbound, not yet accepted by the peer; pending: waits for an answer;
    -- answered: a confirmation exists; rejected: refused by the receiver
    state                 text NOT NULL CHECK (state IN ('queued', 'pending', 'answered', 'rejected')),
    created_at            timestamptz NOT NULL DEFAULT now(),
    received_at           timestamptz,                -- when the responder accepted it
    due_at                timestamptz,                -- reply deadline from the agreement
    answered_at           timestamptz,
    outcome               text CHECK (outcome IN ('found', 'not_found', 'ambiguous', 'refused')),
    reject_reason         text,
    -- inbound: whether the auto-answer worker has looked at it (answered or left for an operator)
    auto_checked          boolean NOT NULL DEFAULT false,
    -- when the deadlines worker first saw it past due while still pending
    overdue_at            timestamptz,
    -- outbound sweeps: the file the inquiry came from, so that re-running it adds nothing
    sweep_key             text
);
CREATE UNIQUE INDEX inquiries_sweep_subject ON inquiries (sweep_key, peer_county, kind, subject_id)
    WHERE sweep_key IS NOT NULL;
CREATE INDEX inquiries_pending_due ON inquiries (due_at) WHERE state = 'pending';
CREATE INDEX inquiries_unchecked ON inquiries (created_at)
    WHERE direction = 'inbound' AND state = 'pending' AND NOT auto_checked;
CREATE INDEX inquiries_peer_received ON inquiries (peer_county, direction, received_at);

-- inbound inquiries accepted per peer and day (China Standard Time), for the agreement's daily cap
CREATE TABLE daily_volume (
    peer_county  text NOT NULL,
    day          date NOT NULL,
    inquiries    integer NOT NULL DEFAULT 0,
    PRIMARY KEY (peer_county, day)
);

-- === confirmations (反馈): the answer to an inquiry ======================================
CREATE TABLE confirmations (
    message_id      uuid PRIMARY KEY,
    inquiry_id      uuid NOT NULL UNIQUE,             -- exactly one answer per inquiry
    direction       text NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    peer_county     text NOT NULL CHECK (peer_county ~ '^[0-9]{6}$'),
    agreement_id    text NOT NULL,
    agreement_hash  text NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('found', 'not_found', 'ambiguous', 'refused')),
    fields          jsonb NOT NULL DEFAULT '{}',      -- only the fields the agreement allows
    answered_by     text NOT NULL CHECK (answered_by IN ('automatic', 'operator')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);

-- === notices (信息通报) ===================================================================
CREATE TABLE notices (
    message_id       uuid PRIMARY KEY,
    direction        text NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    peer_county      text NOT NULL CHECK (peer_county ~ '^[0-9]{6}$'),
    agreement_id     text NOT NULL,
    agreement_hash   text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('birth', 'pregnancy', 'contraception_check', 'moved_on')),
    subject_id       text NOT NULL CHECK (subject_id ~ '^[0-9]{17}[0-9X]$'),
    occurred_on      date,
    body             jsonb NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    acknowledged_at  timestamptz,
    feedback_due_at  timestamptz
);

-- === outbox: what must still reach a peer ================================================
CREATE TABLE outbox (
    message_id       uuid PRIMARY KEY,
    message_type     text NOT NULL CHECK (message_type IN ('inquiry', 'confirmation', 'notice')),
    peer_county      text NOT NULL CHECK (peer_county ~ '^[0-9]{6}$'),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_due ON outbox (peer_county, next_attempt_at);

-- === audit log: append-only ===============================================================
CREATE TABLE audit_log (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at               timestamptz NOT NULL DEFAULT now(),
    peer_county      text,                             -- null when the peer was not identified
    direction        text NOT NULL CHECK (direction IN ('outbound', 'inbound', 'local')),
    message_id       uuid,
    kind             text,
    agreement_id     text,
    agreement_hash   text,
    outcome          text NOT NULL,                    -- accepted, rejected, answered, delivered, ...
    reason           text                              -- never contains an ID number
);
CREATE INDEX audit_log_message ON audit_log (message_id);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP;
END;
$$;
CREATE TRIGGER audit_log_no_update_or_delete
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
