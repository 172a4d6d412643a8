-- hancha: what a received notice does at the origin, and the registry's history.
--
-- === notice_effects: one row per received notice, from the transaction that stores it =======
-- effect: what the agreement said (apply: at once; operator: wait for an operator).
-- state:  pending (waits for an operator), applied (the registry took it), dismissed (an
--         operator looked at it and did not apply it).
-- note:   why it waits (the mapping's reason, never naming the person) or why it was dismissed.
CREATE TABLE notice_effects (
    message_id   uuid PRIMARY KEY REFERENCES notices (message_id),
    effect       text NOT NULL CHECK (effect IN ('apply', 'operator')),
    state        text NOT NULL CHECK (state IN ('pending', 'applied', 'dismissed')),
    note         text,
    changed      text[] NOT NULL DEFAULT '{}',    -- the registry columns the notice changed
    decided_at   timestamptz,
    decided_by   text,                            -- the operator; NULL when applied at intake
    CHECK ((state = 'pending') = (decided_at IS NULL))
);
CREATE INDEX notice_effects_pending ON notice_effects (message_id) WHERE state = 'pending';

-- Notices received before this version were never looked at: they wait for an operator.
INSERT INTO notice_effects (message_id, effect, state, note)
SELECT message_id, 'operator', 'pending', 'received before notices had an effect'
  FROM notices WHERE direction = 'inbound' AND erased_at IS NULL;

-- === registry_history: every change of a registry entry's status, with its source ===========
-- One row per changed column. The source is set by the transaction that writes the entry
-- (set_config('hancha.change_source', …, true), with the notice's id and the operator where
-- they apply); a change made in the database by hand is recorded as 'database'.
CREATE TABLE registry_history (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    resident_id  text NOT NULL,
    field        text NOT NULL,
    old_value    text,
    new_value    text,
    changed_at   timestamptz NOT NULL DEFAULT now(),
    source       text NOT NULL CHECK (source IN ('import', 'notice', 'operator', 'database')),
    message_id   uuid,                            -- the notice, when source = 'notice'
    changed_by   text                             -- the operator, when one made the change
);
CREATE INDEX registry_history_person ON registry_history (resident_id, id);

CREATE FUNCTION registry_history_record() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    before  jsonb := to_jsonb(OLD);
    after   jsonb := to_jsonb(NEW);
    column_name text;
    source  text := coalesce(nullif(current_setting('hancha.change_source', true), ''), 'database');
    notice  uuid := nullif(current_setting('hancha.change_message_id', true), '')::uuid;
    actor   text := nullif(current_setting('hancha.change_by', true), '');
BEGIN
    FOREACH column_name IN ARRAY ARRAY['flow', 'registered_county', 'residence_county', 'township',
        'village', 'marital_status', 'certificate_number', 'certificate_valid_until',
        'certificate_status', 'children_count', 'contraception_status', 'contraception_date',
        'pregnant', 'registered_since']
    LOOP
        IF before -> column_name IS DISTINCT FROM after -> column_name THEN
            INSERT INTO registry_history (resident_id, field, old_value, new_value, source, message_id, changed_by)
            VALUES (NEW.resident_id, column_name, before ->> column_name, after ->> column_name, source, notice, actor);
        END IF;
    END LOOP;
    RETURN NULL;
END;
$$;

-- Only an update that changes a recorded column runs the function: re-importing an unchanged
-- registry costs nothing.
CREATE TRIGGER persons_history AFTER UPDATE ON persons FOR EACH ROW
    WHEN ((OLD.flow, OLD.registered_county, OLD.residence_county, OLD.township, OLD.village,
           OLD.marital_status, OLD.certificate_number, OLD.certificate_valid_until,
           OLD.certificate_status, OLD.children_count, OLD.contraception_status,
           OLD.contraception_date, OLD.pregnant, OLD.registered_since)
          IS DISTINCT FROM
          (NEW.flow, NEW.registered_county, NEW.residence_county, NEW.township, NEW.village,
           NEW.marital_status, NEW.certificate_number, NEW.certificate_valid_until,
           NEW.certificate_status, NEW.children_count, NEW.contraception_status,
           NEW.contraception_date, NEW.pregnant, NEW.registered_since))
    EXECUTE FUNCTION registry_history_record();
