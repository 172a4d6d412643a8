-- hancha: the tamper-evident audit chain.
--
-- Every committed audit record gets a position, in commit order, from the sequencer
-- (sequencer_cursors, src/store/sequencer.rs): a row is sequenced only once every transaction
-- that could still commit before it has ended, judged by the id of the transaction that wrote
-- it (written_by) against the oldest transaction still running. Identity values follow
-- allocation, not commit, so they cannot order the chain on their own.
--
-- audit_chain binds each position to its record: leaf = SHA-256 of the record's versioned
-- canonical encoding (not of these columns, so a later reshaping of audit_log keeps old
-- records verifiable), head = SHA-256(previous head || leaf). audit_checkpoints holds heads
-- signed with the county key; audit_resumes the signed statements that a restore rewound the
-- chain to a checkpoint; peer_audit_checkpoints the latest checkpoint each peer showed us, which
-- every newer one must extend.

-- The transaction that wrote each record. Records already present get the migration's.
ALTER TABLE audit_log ADD COLUMN written_by xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX audit_log_written_by ON audit_log (written_by, id);

-- One cursor per sequenced table ("stream"): the next position to give and the last row given
-- one, in (written_by, id) order; whichever replica sequences next holds an advisory lock.
CREATE TABLE sequencer_cursors (
    stream        text PRIMARY KEY,
    next_position bigint NOT NULL DEFAULT 1 CHECK (next_position > 0),
    last_xid      xid8 NOT NULL DEFAULT '0',
    last_id       bigint NOT NULL DEFAULT 0
);
INSERT INTO sequencer_cursors (stream) VALUES ('audit_log');

CREATE TABLE audit_chain (
    position  bigint PRIMARY KEY CHECK (position > 0),
    audit_id  bigint NOT NULL UNIQUE,          -- audit_log.id; no foreign key: a deleted
                                               -- record must show as missing, not block
    encoding  smallint NOT NULL,               -- the canonical encoding's version (1)
    leaf      bytea NOT NULL CHECK (length(leaf) = 32),
    head      bytea NOT NULL CHECK (length(head) = 32)
);

CREATE TABLE audit_checkpoints (
    position    bigint PRIMARY KEY CHECK (position > 0),
    head        bytea NOT NULL CHECK (length(head) = 32),
    signed_at   timestamptz NOT NULL,
    county      text NOT NULL CHECK (county ~ '^[0-9]{6}$'),
    scheme      text NOT NULL,                 -- the signature algorithm
    signature   bytea NOT NULL,
    certificate bytea NOT NULL                 -- DER of the certificate whose key signed
);

CREATE TABLE audit_resumes (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    from_position bigint NOT NULL CHECK (from_position > 0),
    from_head     bytea NOT NULL CHECK (length(from_head) = 32),
    signed_at     timestamptz NOT NULL,
    county        text NOT NULL CHECK (county ~ '^[0-9]{6}$'),
    reason        text NOT NULL,               -- the operator's words; never a person's data
    scheme        text NOT NULL,
    signature     bytea NOT NULL,
    certificate   bytea NOT NULL
);

-- Append-only, like the records they bind.
CREATE TRIGGER audit_chain_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_checkpoints_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_resumes_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_resumes
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();

-- What each peer showed of its own chain (the last checkpoint it proved), and what it holds of
-- ours (so the next proof we send starts there).
CREATE TABLE peer_audit_checkpoints (
    peer_county     text PRIMARY KEY CHECK (peer_county ~ '^[0-9]{6}$'),
    position        bigint,
    head            bytea,
    signed_at       timestamptz,
    scheme          text,
    signature       bytea,
    certificate     bytea,
    received_at     timestamptz,
    resumed_at      timestamptz,               -- signed_at of the last resume accepted
    fork_at         timestamptz,               -- when its history stopped extending ours
    fork_detail     text,
    holds_position  bigint,                    -- the checkpoint of ours the peer holds
    holds_head      bytea
);
