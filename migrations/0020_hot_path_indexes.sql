-- hancha: indexes for the hot paths at millions of persons and inquiries.
--
-- Each is checked with EXPLAIN on an analysed table in tests/hot_path_plans.rs, which names the
-- query it serves (see src/store/plans.rs).

-- The work queue (ListPending, the console's 工作台): waiting inquiries in deadline order, read
-- in index order up to the page's limit instead of sorted whole.
CREATE INDEX inquiries_inbound_pending_due ON inquiries (due_at, created_at)
    WHERE direction = 'inbound' AND state = 'pending';
CREATE INDEX inquiries_outbound_open_due ON inquiries (due_at, created_at)
    WHERE direction = 'outbound' AND state IN ('queued', 'pending');

-- The indicator report (考核指标): the period's answered inquiries, inquiries received and
-- notices sent, without reading every message ever exchanged.
CREATE INDEX inquiries_outbound_answered ON inquiries (kind, answered_at)
    WHERE direction = 'outbound' AND state = 'answered';
CREATE INDEX inquiries_inbound_received ON inquiries (kind, received_at)
    WHERE direction = 'inbound';
CREATE INDEX notices_outbound_occurred ON notices (kind, occurred_on)
    WHERE direction = 'outbound';
