-- A usage event's status is how its request ended, in the words the request log and the
-- metrics use: a timeout and a stream cut at shutdown are stored as `upstream_timeout` and
-- `shut_down`, no longer as `upstream_error`. Rows already stored keep their status.
--
-- SQLite cannot alter a CHECK, so the table is rebuilt as its manual describes
-- (https://www.sqlite.org/lang_altertable.html#otheralter), inside this migration's
-- transaction: a new table with the same columns and key, every row copied, the old table
-- dropped, the new one renamed, its index made again. No foreign key, trigger or view refers
-- to it.

CREATE TABLE usage_events_ending (
    event_id           TEXT    PRIMARY KEY,
    request_id         TEXT    NOT NULL,
    at                 INTEGER NOT NULL,        -- when the request started
    tenant_id          TEXT    NOT NULL,
    subject            TEXT    NOT NULL,
    credential_id      TEXT    NOT NULL,
    model              TEXT    NOT NULL,        -- the model that served it
    provider           TEXT    NOT NULL,
    upstream_model     TEXT    NOT NULL,
    prompt_tokens      INTEGER NOT NULL,
    completion_tokens  INTEGER NOT NULL,
    cached_tokens      INTEGER NOT NULL,
    reasoning_tokens   INTEGER NOT NULL,
    total_tokens       INTEGER NOT NULL,
    cost_micro_usd     INTEGER NOT NULL,
    status             TEXT    NOT NULL CHECK (status IN (
        'ok', 'rejected', 'upstream_error', 'upstream_timeout', 'client_disconnected', 'shut_down'
    )),
    http_status        INTEGER NOT NULL,
    latency_ms         INTEGER NOT NULL,
    ttft_ms            INTEGER,
    streamed           BOOLEAN NOT NULL,
    estimated          BOOLEAN NOT NULL
);
INSERT INTO usage_events_ending (
    event_id, request_id, at, tenant_id, subject, credential_id, model, provider,
    upstream_model, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens,
    total_tokens, cost_micro_usd, status, http_status, latency_ms, ttft_ms, streamed, estimated
)
SELECT event_id, request_id, at, tenant_id, subject, credential_id, model, provider,
       upstream_model, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens,
       total_tokens, cost_micro_usd, status, http_status, latency_ms, ttft_ms, streamed, estimated
FROM usage_events;
DROP TABLE usage_events;
ALTER TABLE usage_events_ending RENAME TO usage_events;
CREATE INDEX usage_events_tenant_at ON usage_events (tenant_id, at);
