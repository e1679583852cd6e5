-- Tenants, identity providers, users and their credentials.
-- Every time is milliseconds since the Unix epoch (UTC), so SQLite and PostgreSQL share one SQL.

CREATE TABLE tenants (
    id              TEXT    PRIMARY KEY,
    name            TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled', 'deleted')),
    allowed_models  TEXT,                       -- JSON array of model names; NULL = every configured model
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    deleted_at      BIGINT
);

CREATE TABLE issuers (
    id                TEXT    PRIMARY KEY,
    issuer            TEXT    NOT NULL UNIQUE,  -- the exact `iss` value
    tenant_id         TEXT    REFERENCES tenants (id),
    tenant_claim      TEXT,
    audiences         TEXT    NOT NULL,         -- JSON array
    jwks_url          TEXT,
    public_key_pem    TEXT,
    hs256_secret      TEXT,
    algorithms        TEXT    NOT NULL,         -- JSON array
    subject_claim     TEXT    NOT NULL,
    subject_case      TEXT    NOT NULL CHECK (subject_case IN ('exact', 'lowercase')),
    jit_provisioning  BOOLEAN NOT NULL,
    leeway_seconds    BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    CHECK ((tenant_id IS NULL) <> (tenant_claim IS NULL)),
    CHECK (num_nonnulls(jwks_url, public_key_pem, hs256_secret) = 1)
);
CREATE INDEX issuers_tenant ON issuers (tenant_id);

CREATE TABLE users (
    tenant_id           TEXT    NOT NULL REFERENCES tenants (id),
    subject             TEXT    NOT NULL,
    email               TEXT,
    display_name        TEXT,
    role                TEXT    NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'admin')),
    status              TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'deleted')),
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    status_changed_at   BIGINT NOT NULL,
    deleted_at          BIGINT,
    tokens_valid_after  BIGINT,                -- tokens issued (iat) before this are revoked
    PRIMARY KEY (tenant_id, subject)
);
-- For operator hints: the same subject in another tenant, or with another case.
CREATE INDEX users_subject ON users (subject);
CREATE INDEX users_subject_lower ON users (lower(subject));

CREATE TABLE api_keys (
    id          TEXT    PRIMARY KEY,
    tenant_id   TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    key_hash    TEXT    NOT NULL UNIQUE,        -- hex SHA-256 of the whole key; the key itself is never stored
    key_prefix  TEXT    NOT NULL,               -- the first characters, to recognise a key in a list
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT,
    FOREIGN KEY (tenant_id, subject) REFERENCES users (tenant_id, subject)
);
CREATE INDEX api_keys_user ON api_keys (tenant_id, subject);

CREATE TABLE revoked_tokens (
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id),
    jti         TEXT    NOT NULL,
    expires_at  BIGINT NOT NULL,               -- after this the token is dead anyway and the row may go
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, jti)
);

CREATE TABLE quotas (
    tenant_id                TEXT    NOT NULL REFERENCES tenants (id),
    scope                    TEXT    NOT NULL CHECK (scope IN ('tenant', 'user', 'default_user')),
    subject                  TEXT    NOT NULL DEFAULT '',   -- '' unless scope = 'user'
    tokens_per_day           BIGINT,
    tokens_per_month         BIGINT,
    cost_microusd_per_month  BIGINT,
    requests_per_minute      BIGINT,
    tokens_per_minute        BIGINT,
    updated_at               BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, scope, subject)
);
