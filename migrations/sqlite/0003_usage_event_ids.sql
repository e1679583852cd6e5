-- Usage events get a key of their own, made by the gateway. The request id was the key, but a
-- client may send its own `x-request-id` and send it again: its second request was stored as a
-- duplicate of the first and never billed. Rows already stored keep their request id as their
-- event id. SQLite cannot change a primary key in place, so the table is rebuilt.

CREATE TABLE usage_events_keyed (
    event_id           TEXT    PRIMARY KEY,
    request_id         TEXT    NOT NULL,
    at                 INTEGER NOT NULL,        -- when the request started
    tenant_id          TEXT    NOT NULL,
    subject            TEXT    NOT NULL,
    credential_id      TEXT    NOT NULL,
    model              TEXT    NOT NULL,        -- the name the client sent
    provider           TEXT    NOT NULL,
    upstream_model     TEXT    NOT NULL,
    prompt_tokens      INTEGER NOT NULL,
    completion_tokens  INTEGER NOT NULL,
    cached_tokens      INTEGER NOT NULL,
    reasoning_tokens   INTEGER NOT NULL,
    total_tokens       INTEGER NOT NULL,
    cost_micro_usd     INTEGER NOT NULL,
    status             TEXT    NOT NULL CHECK (status IN ('ok', 'upstream_error', 'client_disconnected', 'rejected')),
    http_status        INTEGER NOT NULL,
    latency_ms         INTEGER NOT NULL,
    ttft_ms            INTEGER,
    streamed           BOOLEAN NOT NULL,
    estimated          BOOLEAN NOT NULL
);
INSERT INTO usage_events_keyed
SELECT request_id, request_id, at, tenant_id, subject, credential_id, model, provider,
       upstream_model, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens,
       total_tokens, cost_micro_usd, status, http_status, latency_ms, ttft_ms, streamed, estimated
FROM usage_events;
DROP TABLE usage_events;
ALTER TABLE usage_events_keyed RENAME TO usage_events;
-- Every index is paid for on every insert, on the gateway's own core, and reports read the
-- rollup: one index for an operator's audit of a tenant's period is enough.
CREATE INDEX usage_events_tenant_at ON usage_events (tenant_id, at);
