-- hancha: notices sent as well as received, and the feedback (反馈) a birth notice owes.
--
-- An outbound notice is written with its outbox entry in one transaction, like an inquiry; the
-- peer's receipt fills `acknowledged_at` (when the peer received it) and `feedback_due_at` (the
-- peer's feedback deadline), a refusal fills `reject_reason`. For an inbound notice both columns
-- keep meaning what they meant: when we received it, and when our feedback is due.
ALTER TABLE notices ADD COLUMN reject_reason text;

-- Outbound notices by state, for `hancha pending --notices --outbound` and `show`.
CREATE INDEX notices_feedback_due ON notices (feedback_due_at) WHERE feedback_due_at IS NOT NULL;

-- === feedback (反馈) to a notice ==============================================================
-- A message of its own, authored by the receiver of the notice (the origin county), linked to
-- the notice it answers: exactly one per notice. Sent through the outbox, acknowledged by the
-- notice's sender, stored on both sides.
CREATE TABLE feedback (
    message_id       uuid PRIMARY KEY,                    -- chosen by the author (UUID v7)
    notice_id        uuid NOT NULL UNIQUE,                -- the notice answered: one answer each
    direction        text NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    peer_county      text NOT NULL CHECK (peer_county ~ '^[0-9]{6}$'),
    agreement_id     text NOT NULL,
    agreement_hash   text NOT NULL,
    outcome          text NOT NULL CHECK (outcome IN ('registered', 'child_counted', 'township_follow_up',
                                                      'not_registered_here')),
    note             text CHECK (char_length(note) <= 200),
    answered_at      timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    -- outbound: when the notice's sender received it; inbound: when we received it
    acknowledged_at  timestamptz,
    -- outbound: why the notice's sender refused it
    reject_reason    text,
    content_tag      bytea,
    erased_at        timestamptz
);
CREATE INDEX feedback_peer ON feedback (peer_county);

CREATE FUNCTION feedback_content(f feedback) RETURNS bytea LANGUAGE sql STABLE AS $$
    SELECT sha256(convert_to(concat_ws(E'\n', 'feedback/v1', f.message_id::text, f.notice_id::text,
        f.agreement_id, f.agreement_hash, f.outcome, coalesce(f.note, '')), 'UTF8'))
$$;
CREATE TRIGGER feedback_content_changed
    BEFORE UPDATE OF message_id, notice_id, agreement_id, agreement_hash, outcome, note
        ON feedback FOR EACH ROW
    WHEN ((OLD.message_id, OLD.notice_id, OLD.agreement_id, OLD.agreement_hash, OLD.outcome, OLD.note)
          IS DISTINCT FROM (NEW.message_id, NEW.notice_id, NEW.agreement_id, NEW.agreement_hash, NEW.outcome,
           NEW.note))
    EXECUTE FUNCTION message_content_changed();

-- === the outbox carries feedback too ===========================================================
ALTER TABLE outbox DROP CONSTRAINT outbox_message_type_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_message_type_check
    CHECK (message_type IN ('inquiry', 'confirmation', 'notice', 'feedback'));

ALTER TABLE erasures DROP CONSTRAINT erasures_table_name_check;
ALTER TABLE erasures ADD CONSTRAINT erasures_table_name_check
    CHECK (table_name IN ('inquiries', 'confirmations', 'notices', 'feedback', 'reconcile_differences'));
