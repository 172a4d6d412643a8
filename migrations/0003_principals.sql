-- hancha: who read what (principals on the operator API).
--
-- Every operator action that reads or changes a person's data, and every operator refusal, is
-- an audit record naming the principal (the operator's name from its certificate, or
-- 'loopback'), its scope (the whole county, or one township office) and the action. Like every
-- audit record it names messages by id or gives counts, never a resident ID number; a principal
-- name that could be one is refused before it gets here, and the check below makes sure.

ALTER TABLE audit_log
    ADD COLUMN principal       text,  -- null for records of the exchange between counties
    ADD COLUMN principal_scope text,  -- 'county:<6 digits>' or 'township:<9 digits>'
    ADD COLUMN action          text;  -- the operator action: show_inquiry, answer, ask, ...

ALTER TABLE audit_log
    ADD CONSTRAINT audit_log_principal_is_no_id_number CHECK (principal !~ '[0-9]{14}'),
    ADD CONSTRAINT audit_log_principal_has_scope CHECK ((principal IS NULL) = (principal_scope IS NULL));

-- "What did this operator read last week?"
CREATE INDEX audit_log_principal ON audit_log (principal, at) WHERE principal IS NOT NULL;
