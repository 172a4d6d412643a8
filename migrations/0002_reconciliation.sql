-- hancha: reconciliation (对账).
--
-- Digests are kept on the rows they describe, so a nightly run reads them instead of
-- recomputing a million records. Message digests cover what both sides store of a message
-- (never local state such as delivery times) and are set by triggers on every write. Person
-- digests depend on the fields the agreement lets both sides see, so the node computes them;
-- a registry write clears the digest, and the next run recomputes only what was cleared or
-- made for other fields.
--
-- Sensitive data: the person-level differences of a run keep the ID number (for the township
-- office that follows them up), like the registry itself; the audit log still never does.

-- === message digests ======================================================================
ALTER TABLE inquiries ADD COLUMN content_digest bytea;
ALTER TABLE confirmations ADD COLUMN content_digest bytea;
ALTER TABLE notices ADD COLUMN content_digest bytea;

CREATE FUNCTION inquiry_content_digest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.content_digest := sha256(convert_to(concat_ws(E'\n', 'inquiry/v1', NEW.message_id::text,
        NEW.agreement_id, NEW.agreement_hash, NEW.kind, NEW.priority, NEW.subject_id,
        coalesce(NEW.subject_certificate, '')), 'UTF8'));
    RETURN NEW;
END;
$$;
CREATE TRIGGER inquiries_content_digest
    BEFORE INSERT OR UPDATE OF message_id, agreement_id, agreement_hash, kind, priority, subject_id,
        subject_certificate ON inquiries
    FOR EACH ROW EXECUTE FUNCTION inquiry_content_digest();

CREATE FUNCTION confirmation_content_digest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.content_digest := sha256(convert_to(concat_ws(E'\n', 'confirmation/v1', NEW.message_id::text,
        NEW.inquiry_id::text, NEW.agreement_id, NEW.agreement_hash, NEW.outcome, NEW.fields::text), 'UTF8'));
    RETURN NEW;
END;
$$;
CREATE TRIGGER confirmations_content_digest
    BEFORE INSERT OR UPDATE OF message_id, inquiry_id, agreement_id, agreement_hash, outcome, fields
        ON confirmations
    FOR EACH ROW EXECUTE FUNCTION confirmation_content_digest();

CREATE FUNCTION notice_content_digest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.content_digest := sha256(convert_to(concat_ws(E'\n', 'notice/v1', NEW.message_id::text,
        NEW.agreement_id, NEW.agreement_hash, NEW.kind, NEW.subject_id, coalesce(NEW.occurred_on::text, ''),
        NEW.body::text), 'UTF8'));
    RETURN NEW;
END;
$$;
CREATE TRIGGER notices_content_digest
    BEFORE INSERT OR UPDATE OF message_id, agreement_id, agreement_hash, kind, subject_id, occurred_on, body
        ON notices
    FOR EACH ROW EXECUTE FUNCTION notice_content_digest();

UPDATE inquiries SET message_id = message_id;
UPDATE confirmations SET message_id = message_id;
UPDATE notices SET message_id = message_id;

ALTER TABLE inquiries ALTER COLUMN content_digest SET NOT NULL;
ALTER TABLE confirmations ALTER COLUMN content_digest SET NOT NULL;
ALTER TABLE notices ALTER COLUMN content_digest SET NOT NULL;

CREATE INDEX confirmations_peer ON confirmations (peer_county);
CREATE INDEX notices_peer ON notices (peer_county);

-- === person digests =======================================================================
-- shared_digest: SHA-256 of the ID number and the compared fields (see domain::reconcile::people);
-- shared_digest_fields: which fields it was made for.
ALTER TABLE persons ADD COLUMN shared_digest bytea;
ALTER TABLE persons ADD COLUMN shared_digest_fields text;
CREATE INDEX persons_outflow_residence ON persons (residence_county) WHERE flow = 'outflow';
CREATE INDEX persons_inflow_registration ON persons (registered_county) WHERE flow = 'inflow';

-- === runs and their differences ===========================================================
-- One row per run and set, on each side: the caller (initiator) and the called (responder).
CREATE TABLE reconcile_runs (
    run_id           uuid NOT NULL,
    set_name         text NOT NULL CHECK (set_name IN ('messages', 'shared_people')),
    peer_county      text NOT NULL CHECK (peer_county ~ '^[0-9]{6}$'),
    agreement_id     text NOT NULL,
    agreement_hash   text NOT NULL,
    role             text NOT NULL CHECK (role IN ('initiator', 'responder')),
    started_at       timestamptz NOT NULL,
    finished_at      timestamptz NOT NULL DEFAULT now(),
    -- completed: repairs committed; interrupted: broke off, nothing changed (retried next time)
    outcome          text NOT NULL CHECK (outcome IN ('completed', 'interrupted')),
    error            text,                 -- why it broke off; never names a person
    local_size       bigint NOT NULL DEFAULT 0,
    peer_size        bigint NOT NULL DEFAULT 0,
    differences      integer NOT NULL DEFAULT 0,
    repaired         integer NOT NULL DEFAULT 0,
    reported         integer NOT NULL DEFAULT 0,
    inquiries_opened integer NOT NULL DEFAULT 0,
    symbols          bigint NOT NULL DEFAULT 0,
    fell_back        boolean NOT NULL DEFAULT false,
    bytes_sent       bigint NOT NULL DEFAULT 0,
    bytes_received   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, set_name, role)
);
CREATE INDEX reconcile_runs_peer ON reconcile_runs (peer_county, started_at DESC);

CREATE TABLE reconcile_differences (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id        uuid NOT NULL,
    set_name      text NOT NULL,
    role          text NOT NULL,
    difference    text NOT NULL CHECK (difference IN ('missing_at_peer', 'missing_here', 'divergent',
                                                      'unknown_to_peer', 'differs', 'unknown_here')),
    action        text NOT NULL CHECK (action IN ('redelivered', 'awaiting_peer', 'reported',
                                                  'inquiry_opened', 'over_cap', 'already_asked')),
    message_type  text,
    message_id    uuid,
    author_county text,
    resident_id   text,
    flow          text,
    township      text,
    person_tag    bytea,
    inquiry_id    uuid,                 -- the outflow inquiry opened for the person
    FOREIGN KEY (run_id, set_name, role) REFERENCES reconcile_runs
);
CREATE INDEX reconcile_differences_run ON reconcile_differences (run_id);
-- "was this inquiry opened by reconciliation?", asked before opening another about the person
CREATE INDEX reconcile_differences_inquiry ON reconcile_differences (inquiry_id) WHERE inquiry_id IS NOT NULL;
