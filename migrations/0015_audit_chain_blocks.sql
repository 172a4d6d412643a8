-- hancha: the audit chain stored one row per sealed batch ("block").
--
-- A row per position cost every sealed record a heap tuple and an index entry beside intake;
-- a block holds a whole sealing batch (up to 3,000 positions) in one row: the records' ids in
-- position order, their leaves (32 bytes each, concatenated), the head before the block and the
-- head after it. The head at a position inside a block is computed from the head before it and
-- the leaves up to it; hashes are stored uncompressed (they do not compress).
--
-- audit_chain_positions shows the chain one position per row, as it was stored before, for
-- verification queries and for a person reading the chain.

ALTER TABLE audit_chain RENAME TO audit_chain_by_position;

CREATE TABLE audit_chain (
    first_position bigint PRIMARY KEY CHECK (first_position > 0),
    last_position  bigint NOT NULL CHECK (last_position >= first_position),
    encoding       smallint NOT NULL,          -- the canonical encoding's version (1)
    audit_ids      bigint[] NOT NULL,          -- audit_log.id per position, in order; no foreign
                                               -- key: a deleted record must show as missing
    leaves         bytea NOT NULL,             -- 32 bytes per position, in order
    head_before    bytea NOT NULL CHECK (length(head_before) = 32),
    head           bytea NOT NULL CHECK (length(head) = 32),  -- at last_position
    CHECK (cardinality(audit_ids) = last_position - first_position + 1),
    CHECK (length(leaves) = 32 * cardinality(audit_ids)),
    -- no position in two blocks, as the per-position primary key ruled out before
    EXCLUDE USING gist (int8range(first_position, last_position, '[]') WITH &&)
);
-- stored as they are, without trying to compress: hashes do not compress, and the sealer's
-- time is intake's
ALTER TABLE audit_chain ALTER COLUMN audit_ids SET STORAGE EXTERNAL;
ALTER TABLE audit_chain ALTER COLUMN leaves SET STORAGE EXTERNAL;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM audit_chain_by_position WHERE encoding <> 1) THEN
        RAISE EXCEPTION 'audit_chain holds an encoding other than 1: upgrade by hand';
    END IF;
END;
$$;

-- runs of consecutive positions, cut into blocks of at most 3,000 (a chain that lost rows
-- keeps its gap, and verification still names it). A block keeps only the heads before and
-- after it, so a stored head that does not follow from the one before (edited before this
-- upgrade) becomes a block of its own, keeping both heads for verification to name.
INSERT INTO audit_chain (first_position, last_position, encoding, audit_ids, leaves, head_before, head)
SELECT min(position), max(position), 1,
       array_agg(audit_id ORDER BY position),
       string_agg(leaf, ''::bytea ORDER BY position),
       coalesce((SELECT p.head FROM audit_chain_by_position p WHERE p.position = min(c.position) - 1),
                '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea),
       (array_agg(head ORDER BY position DESC))[1]
FROM (SELECT position, audit_id, leaf, head, run, broken, breaks,
             (row_number() OVER (PARTITION BY run, breaks, broken ORDER BY position) - 1) / 3000 AS part
      FROM (SELECT position, audit_id, leaf, head, run, broken,
                   sum(broken::int) OVER (ORDER BY position) AS breaks
            FROM (SELECT position, audit_id, leaf, head,
                         position - row_number() OVER (ORDER BY position) AS run,
                         head IS DISTINCT FROM sha256(
                             CASE WHEN position = 1
                                  THEN '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea
                                  WHEN lag(position) OVER (ORDER BY position) = position - 1
                                  THEN lag(head) OVER (ORDER BY position)
                             END || leaf)
                           AND (position = 1 OR lag(position) OVER (ORDER BY position) = position - 1) AS broken
                  FROM audit_chain_by_position) numbered) counted) c
GROUP BY run, breaks, broken, part;

DROP TABLE audit_chain_by_position;

CREATE TRIGGER audit_chain_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_is_append_only();

CREATE VIEW audit_chain_positions AS
SELECT b.first_position + u.ord - 1 AS position,
       u.audit_id,
       b.encoding,
       substring(b.leaves FROM ((u.ord - 1) * 32 + 1)::int FOR 32) AS leaf
FROM audit_chain b
CROSS JOIN LATERAL unnest(b.audit_ids) WITH ORDINALITY AS u(audit_id, ord);
