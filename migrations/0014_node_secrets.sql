-- hancha: secrets of this node's own, made here, never sent anywhere.
--
-- `message_ids`: the key under which the node derives a notice's id from a caller's idempotency
-- key (a batch row's digest of kind, county, person and day), so that re-sending a row gives the
-- same id while the id, which travels to the peer and into logs and audit records, reveals
-- nothing of the person. 32 bytes from two random UUIDs (PostgreSQL's strong random source).
CREATE TABLE node_secrets (
    name  text PRIMARY KEY,
    value bytea NOT NULL CHECK (length(value) = 32)
);
INSERT INTO node_secrets (name, value)
VALUES ('message_ids', decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));
