-- Usage: one row per request, and an hourly rollup kept in step with it.
-- The request id is the primary key, so writing an event twice (a retried batch, a replayed
-- spill file) leaves one row. Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE usage_events (
    request_id         TEXT    PRIMARY KEY,
    at                 BIGINT  NOT NULL,        -- when the request started
    tenant_id          TEXT    NOT NULL,
    subject            TEXT    NOT NULL,
    credential_id      TEXT    NOT NULL,
    model              TEXT    NOT NULL,        -- the name the client sent
    provider           TEXT    NOT NULL,
    upstream_model     TEXT    NOT NULL,
    prompt_tokens      BIGINT  NOT NULL,
    completion_tokens  BIGINT  NOT NULL,
    cached_tokens      BIGINT  NOT NULL,
    reasoning_tokens   BIGINT  NOT NULL,
    total_tokens       BIGINT  NOT NULL,
    cost_micro_usd     BIGINT  NOT NULL,
    status             TEXT    NOT NULL CHECK (status IN ('ok', 'upstream_error', 'client_disconnected', 'rejected')),
    http_status        INTEGER NOT NULL,
    latency_ms         BIGINT  NOT NULL,
    ttft_ms            BIGINT,
    streamed           BOOLEAN NOT NULL,
    estimated          BOOLEAN NOT NULL
);
-- No foreign keys to tenants/users: usage is history and must be writable whatever happened to
-- the account since the request started.
CREATE INDEX usage_events_tenant_at ON usage_events (tenant_id, at);
CREATE INDEX usage_events_user_at ON usage_events (tenant_id, subject, at);

-- Written in the same transaction as the events it counts, so reports never read millions of
-- events and never disagree with them.
CREATE TABLE usage_hourly (
    tenant_id          TEXT    NOT NULL,
    subject            TEXT    NOT NULL,
    model              TEXT    NOT NULL,
    provider           TEXT    NOT NULL,
    hour_start         BIGINT  NOT NULL,
    requests           BIGINT  NOT NULL,
    prompt_tokens      BIGINT  NOT NULL,
    completion_tokens  BIGINT  NOT NULL,
    cached_tokens      BIGINT  NOT NULL,
    total_tokens       BIGINT  NOT NULL,
    cost_micro_usd     BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, subject, model, provider, hour_start)
);
-- Reports and quota rebuilds select a period first, across tenants.
CREATE INDEX usage_hourly_hour ON usage_hourly (hour_start);
