-- hancha: the audit chain hardened.
--
-- A peer whose newest checkpoints come without the leaves that prove them (its chain no longer
-- has the head we hold) stays "unproven"; how long, and over how many exchanges, is counted
-- here, so that a peer that stays unproven past `limits.audit_unproven_exchanges` exchanges or
-- `limits.audit_unproven_after` is treated as forked. Both clear when a proof arrives.
ALTER TABLE peer_audit_checkpoints
    ADD COLUMN unproven_since     timestamptz,
    ADD COLUMN unproven_exchanges integer NOT NULL DEFAULT 0,
    ADD COLUMN unproven_detail    text;

-- The chain's tables refuse TRUNCATE as audit_log does (row triggers do not see it).
CREATE FUNCTION audit_chain_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP;
END;
$$;
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_is_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_is_append_only();
CREATE TRIGGER audit_resumes_no_truncate BEFORE TRUNCATE ON audit_resumes
    FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_is_append_only();
