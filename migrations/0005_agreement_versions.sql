-- hancha: where each agreement version stands, and what each peer last said about itself.
--
-- A version is sent under only once the peer holds it too (held_by_peer, from the peer's
-- status; NULL until the peer has said); an operator may retire a version (retired_at, with
-- who did it), after which nothing new travels under it.
ALTER TABLE agreements
    ADD COLUMN held_by_peer boolean,
    ADD COLUMN retired_at   timestamptz,
    ADD COLUMN retired_by   text;

-- The peer's last status: when, its software, and how far its clock is from ours.
CREATE TABLE peer_status (
    peer_county      text PRIMARY KEY CHECK (peer_county ~ '^[0-9]{6}$'),
    checked_at       timestamptz NOT NULL,
    software_version text NOT NULL,
    clock_offset_ms  bigint NOT NULL,       -- the peer's clock minus ours
    round_trip_ms    bigint                 -- NULL when the peer called us (measured one way)
);

-- A message the peer refused only because the two sides hold different agreement versions:
-- it waits (not final) and is released as soon as the peer's status shows a version it now
-- holds.
ALTER TABLE outbox
    ADD COLUMN held boolean NOT NULL DEFAULT false;
