-- Webhooks: endpoints per tenant, an outbox of deliveries written in the transaction of the
-- change that caused them, and the marks that make each quota threshold fire once per period.

CREATE TABLE webhook_endpoints (
    id          TEXT    PRIMARY KEY,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id),
    url         TEXT    NOT NULL,
    events      TEXT    NOT NULL,               -- JSON array of event types
    thresholds  TEXT    NOT NULL,               -- JSON array of percents, for quota.threshold
    -- The signing secret itself (`whsec_…`): a signature needs it, so unlike a key it cannot
    -- be kept as a hash. Never shown after creation, never in an audit event.
    secret      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    deleted_at  INTEGER
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id);

-- One row per event per endpoint. `id` is the `webhook-id` header: the same on every attempt,
-- so a receiver can drop a redelivery.
CREATE TABLE webhook_deliveries (
    id               TEXT     PRIMARY KEY,
    endpoint_id      TEXT     NOT NULL REFERENCES webhook_endpoints (id),
    tenant_id        TEXT     NOT NULL,
    event_type       TEXT     NOT NULL,
    payload          TEXT     NOT NULL,          -- the exact body sent on every attempt
    created_at       INTEGER  NOT NULL,
    status           TEXT     NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER  NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER  NOT NULL,
    -- A worker that took the row holds it until then; after a crash, another takes it over.
    claimed_until    INTEGER,
    last_status      INTEGER,                    -- the receiver's HTTP status, if it answered
    last_error       TEXT,
    delivered_at     INTEGER
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at);

-- A quota threshold that fired: inserted (or found already there) in the usage settlement's
-- transaction, so however many replicas settle usage, a threshold fires once per period.
CREATE TABLE quota_thresholds_fired (
    tenant_id     TEXT    NOT NULL,
    scope         TEXT    NOT NULL CHECK (scope IN ('tenant', 'user')),
    subject       TEXT    NOT NULL,              -- '' for the tenant scope
    limit_kind    TEXT    NOT NULL,
    period_start  INTEGER NOT NULL,
    threshold     INTEGER NOT NULL,
    fired_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, scope, subject, limit_kind, period_start, threshold)
);
