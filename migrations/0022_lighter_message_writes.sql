-- hancha: fewer index entries per exchanged message (the storage floor).
--
-- Every message exchanged changes its inquiry's `state` two or three times (queued, pending,
-- answered). `state` is in the predicate of the work-queue, retention and report indexes, so
-- none of these updates can be a heap-only (HOT) update: each writes a new row version and an
-- entry in every index whose predicate the new version meets, and every full index gets one
-- each time. What is cut here is what no query needs, or what another index already serves.
-- Nothing changes in what any statement returns; only where PostgreSQL looks for it.

-- === inquiries =============================================================================
-- (peer_county, direction, received_at) had an entry for every inquiry, re-made on each of its
-- updates: three on the asking side (queued, pending, answered), two on the answering side. No
-- statement reads `received_at` through it (the indicator report reads inbound inquiries by
-- received time through inquiries_inbound_received); what it served is reading one peer's
-- inquiries (reconciliation's message set and its tagging, the inquiries asked before), at any
-- number of peers. That is now split by state: the open inquiries (inbound pending; outbound
-- queued or pending) are all in the two work-queue indexes already, and the rest — answered or
-- rejected, everything a peer's history holds — get an entry keyed by peer and agreement here,
-- once, when they close. The statements that read a peer's inquiries name both parts
-- (src/store/tags.rs, `INQUIRIES_BY_INDEX`), and the planner reads the three indexes together.
DROP INDEX inquiries_peer_received;
CREATE INDEX inquiries_peer_closed ON inquiries (peer_county, agreement_id)
    WHERE NOT (state = 'pending' OR direction = 'outbound' AND state = 'queued');

-- (due_at) WHERE state = 'pending' duplicated, for pending inquiries, the two work-queue
-- indexes split by direction (inquiries_inbound_pending_due: inbound and pending;
-- inquiries_outbound_open_due: outbound, queued or pending), both led by due_at. The deadlines
-- worker's overdue scan and the metrics' pending counts name both directions
-- (`direction = 'inbound' OR direction = 'outbound'`, all there is), so the planner reads the
-- two indexes together (a BitmapOr) instead.
DROP INDEX inquiries_pending_due;

-- (kind, received_at) WHERE direction = 'inbound' had an entry for every inbound inquiry, re-made
-- when it was answered. Its one reader, the indicator report, reads inbound inquiries of kind
-- outflow_status only (the subjects asked about who are not in our registry, for 流出人口
-- 函查率); certificate verifications, most of what a county is asked, need no entry.
DROP INDEX inquiries_inbound_received;
CREATE INDEX inquiries_inbound_received ON inquiries (received_at)
    WHERE direction = 'inbound' AND kind = 'outflow_status';

-- === confirmations =========================================================================
-- confirmations_peer (peer_county) stays: reconciliation reads a peer's confirmations through
-- it, and with the room below an answer's updates no longer write to it; it costs one entry per
-- confirmation, when it is written.

-- An answer sent is updated once when it is delivered (delivered_at), and every confirmation
-- later once when reconciliation tags it and once when retention erases it. None of these
-- columns is in an index, so each update can stay on its page (HOT: no index entries at all)
-- if the page has room for the new version. Pages filled to half leave room for one new
-- version of every row on them; dead versions are pruned from the page before the next update
-- needs the room. Applies to pages written from now on; rows already stored stay where they are.
ALTER TABLE confirmations SET (fillfactor = 50);

-- === audit_log =============================================================================
-- (at) was read by no statement: the log is read by id (the chain, operator records newest
-- first) and by message_id (an inquiry's history), and sequenced by (written_by, id). Records
-- are appended in time order, so a BRIN index keeps time-range questions (an operator's "what
-- happened on the 3rd") cheap at a fraction of the cost: it is summarised a block range at a
-- time, not one entry per record.
DROP INDEX audit_log_at;
CREATE INDEX audit_log_at ON audit_log USING brin (at);
