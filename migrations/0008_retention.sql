-- hancha: personal data kept no longer than agreed (PIPL Art. 19, 47).
--
-- Each agreement says how many days the personal data of its exchanges is kept
-- (`retention_days`). Past that age the retention worker erases a message's personal columns
-- (listed with what erasure does to them in src/store/personal.rs) and keeps its id, kind,
-- state, times and a keyed tag of its content, and records what it erased in `erasures`.
--
-- Message digests move onto keyed tags. Until now `content_digest` was an unkeyed SHA-256 over
-- the message, the subject's ID number included: with the message id beside it, the 10⁸
-- candidate ID numbers of a county are a quick brute force once the ID number itself is gone.
-- `content_tag` is HMAC-SHA256 of that digest under the agreement's reconciliation secret (the
-- key both counties already hold for the agreement, see domain::reconcile::key): both sides
-- compute the same tag for the same message, so reconciliation compares it, and a side that
-- erased a message still holds the tag it made before erasing. The digest itself is never
-- stored again: the functions below compute it on demand from a row not yet erased.
--
-- Existing rows: their old digests are dropped, and their tags are made by the node on its next
-- reconciliation run (or by the retention worker before it erases), while the content is still
-- there to make them from.

-- === the unkeyed digests go ================================================================
DROP TRIGGER inquiries_content_digest ON inquiries;
DROP TRIGGER confirmations_content_digest ON confirmations;
DROP TRIGGER notices_content_digest ON notices;
DROP FUNCTION inquiry_content_digest();
DROP FUNCTION confirmation_content_digest();
DROP FUNCTION notice_content_digest();
ALTER TABLE inquiries DROP COLUMN content_digest;
ALTER TABLE confirmations DROP COLUMN content_digest;
ALTER TABLE notices DROP COLUMN content_digest;

-- === keyed tags, and when a row was erased ===================================================
ALTER TABLE inquiries ADD COLUMN content_tag bytea, ADD COLUMN erased_at timestamptz;
ALTER TABLE confirmations ADD COLUMN content_tag bytea, ADD COLUMN erased_at timestamptz;
ALTER TABLE notices ADD COLUMN content_tag bytea, ADD COLUMN erased_at timestamptz;

-- An erased message has no subject; one not erased always has one.
ALTER TABLE inquiries ALTER COLUMN subject_id DROP NOT NULL,
    ADD CONSTRAINT inquiries_subject_until_erased CHECK ((subject_id IS NULL) = (erased_at IS NOT NULL));
ALTER TABLE notices ALTER COLUMN subject_id DROP NOT NULL,
    ADD CONSTRAINT notices_subject_until_erased CHECK ((subject_id IS NULL) = (erased_at IS NOT NULL));

-- The content digest of a message not yet erased (the same canonical form as migration 0002's
-- `content_digest`): the input of its keyed tag, computed when the tag is made, never stored.
CREATE FUNCTION inquiry_content(i inquiries) RETURNS bytea LANGUAGE sql STABLE AS $$
    SELECT sha256(convert_to(concat_ws(E'\n', 'inquiry/v1', i.message_id::text, i.agreement_id,
        i.agreement_hash, i.kind, i.priority, i.subject_id, coalesce(i.subject_certificate, '')), 'UTF8'))
$$;
CREATE FUNCTION confirmation_content(c confirmations) RETURNS bytea LANGUAGE sql STABLE AS $$
    SELECT sha256(convert_to(concat_ws(E'\n', 'confirmation/v1', c.message_id::text, c.inquiry_id::text,
        c.agreement_id, c.agreement_hash, c.outcome, c.fields::text), 'UTF8'))
$$;
CREATE FUNCTION notice_content(n notices) RETURNS bytea LANGUAGE sql STABLE AS $$
    SELECT sha256(convert_to(concat_ws(E'\n', 'notice/v1', n.message_id::text, n.agreement_id,
        n.agreement_hash, n.kind, n.subject_id, coalesce(n.occurred_on::text, ''), n.body::text), 'UTF8'))
$$;

-- A tag describes the content it was made from: a change of content (a queued inquiry moved to
-- another agreement version) clears it, and the next run makes it again. Erasure keeps it.
CREATE FUNCTION message_content_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.erased_at IS NULL THEN
        NEW.content_tag := NULL;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER inquiries_content_changed
    BEFORE UPDATE OF message_id, agreement_id, agreement_hash, kind, priority, subject_id, subject_certificate
        ON inquiries FOR EACH ROW
    WHEN ((OLD.message_id, OLD.agreement_id, OLD.agreement_hash, OLD.kind, OLD.priority, OLD.subject_id,
           OLD.subject_certificate)
          IS DISTINCT FROM (NEW.message_id, NEW.agreement_id, NEW.agreement_hash, NEW.kind, NEW.priority,
           NEW.subject_id, NEW.subject_certificate))
    EXECUTE FUNCTION message_content_changed();
CREATE TRIGGER confirmations_content_changed
    BEFORE UPDATE OF message_id, inquiry_id, agreement_id, agreement_hash, outcome, fields
        ON confirmations FOR EACH ROW
    WHEN ((OLD.message_id, OLD.inquiry_id, OLD.agreement_id, OLD.agreement_hash, OLD.outcome, OLD.fields)
          IS DISTINCT FROM (NEW.message_id, NEW.inquiry_id, NEW.agreement_id, NEW.agreement_hash, NEW.outcome,
           NEW.fields))
    EXECUTE FUNCTION message_content_changed();
CREATE TRIGGER notices_content_changed
    BEFORE UPDATE OF message_id, agreement_id, agreement_hash, kind, subject_id, occurred_on, body
        ON notices FOR EACH ROW
    WHEN ((OLD.message_id, OLD.agreement_id, OLD.agreement_hash, OLD.kind, OLD.subject_id, OLD.occurred_on,
           OLD.body)
          IS DISTINCT FROM (NEW.message_id, NEW.agreement_id, NEW.agreement_hash, NEW.kind, NEW.subject_id,
           NEW.occurred_on, NEW.body))
    EXECUTE FUNCTION message_content_changed();

-- What the retention worker looks for: closed messages not yet erased, oldest first.
CREATE INDEX inquiries_erasable ON inquiries (agreement_id, coalesce(answered_at, created_at))
    WHERE erased_at IS NULL AND state IN ('answered', 'rejected');
CREATE INDEX notices_erasable ON notices (agreement_id, created_at) WHERE erased_at IS NULL;
CREATE INDEX reconcile_differences_personal ON reconcile_differences (run_id) WHERE resident_id IS NOT NULL;

-- === what was erased ==========================================================================
-- One row per erased row: which table, which row (a message id, or a reconciliation difference's
-- id), which columns, under which agreement and retention period, and when. Never a value.
CREATE TABLE erasures (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    erased_at       timestamptz NOT NULL DEFAULT now(),
    table_name      text NOT NULL CHECK (table_name IN ('inquiries', 'confirmations', 'notices',
                                                        'reconcile_differences')),
    row_key         text NOT NULL,
    columns         text NOT NULL,
    agreement_id    text NOT NULL,
    retention_days  integer NOT NULL CHECK (retention_days >= 0),
    UNIQUE (table_name, row_key)
);
CREATE INDEX erasures_at ON erasures (erased_at);
