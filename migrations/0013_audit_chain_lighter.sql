-- hancha: sealing writes less per audit record.
--
-- audit_chain.audit_id needs no unique index of its own: the sequencer gives each committed
-- record exactly one position (src/store/sequencer.rs), and verification reads the chain in
-- position order and joins each record by its primary key. The index cost every sealed record a
-- second B-tree insertion beside intake. Finding records the sequencer passed that are not in the
-- chain (`hancha audit verify`) anti-joins the whole chain, once per verification.
ALTER TABLE audit_chain DROP CONSTRAINT audit_chain_audit_id_key;
