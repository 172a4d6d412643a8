-- hancha: an outbox entry on the wire says so, until when (its lease), so that what happens to a
-- peer's other entries — put back when its circuit opens, made due again when it closes — never
-- touches a batch a sender (this replica or another) still has on the wire: that batch's own
-- outcome decides its entries, and it is never sent twice at once.
ALTER TABLE outbox ADD COLUMN leased_until timestamptz;
