-- Usage events get a key of their own, made by the gateway. The request id was the key, but a
-- client may send its own `x-request-id` and send it again: its second request was stored as a
-- duplicate of the first and never billed. Rows already stored keep their request id as their
-- event id.

ALTER TABLE usage_events ADD COLUMN event_id TEXT;
UPDATE usage_events SET event_id = request_id;
ALTER TABLE usage_events ALTER COLUMN event_id SET NOT NULL;
ALTER TABLE usage_events DROP CONSTRAINT usage_events_pkey;
ALTER TABLE usage_events ADD PRIMARY KEY (event_id);
-- Every index is paid for on every insert, and reports read the rollup: one index for an
-- operator's audit of a tenant's period is enough.
DROP INDEX usage_events_user_at;
