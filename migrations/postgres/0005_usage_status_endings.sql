-- A usage event's status is how its request ended, in the words the request log and the
-- metrics use: a timeout and a stream cut at shutdown are stored as `upstream_timeout` and
-- `shut_down`, no longer as `upstream_error`. Rows already stored keep their status.
--
-- NOT VALID skips re-reading the table under the exclusive lock this takes: every stored row
-- passed the narrower check it replaces, and every new row is checked.

ALTER TABLE usage_events DROP CONSTRAINT usage_events_status_check;
ALTER TABLE usage_events ADD CONSTRAINT usage_events_status_check CHECK (status IN (
    'ok', 'rejected', 'upstream_error', 'upstream_timeout', 'client_disconnected', 'shut_down'
)) NOT VALID;
