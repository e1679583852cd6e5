-- Identity lifecycle: SCIM provisioning, groups that narrow access, required scopes, and the
-- audit log every write records itself in.

-- Which SCIM attribute becomes a provisioned user's subject (the value their tokens carry).
ALTER TABLE tenants ADD COLUMN scim_subject_attribute TEXT NOT NULL DEFAULT 'externalId'
    CHECK (scim_subject_attribute IN ('externalId', 'userName'));

-- The claim that lists a token's groups (NULL = the issuer's tokens carry none we read), and
-- the scopes every token of the issuer must hold (JSON array; empty = none required).
ALTER TABLE issuers ADD COLUMN groups_claim TEXT;
ALTER TABLE issuers ADD COLUMN required_scopes TEXT NOT NULL DEFAULT '[]';

-- Bearer tokens for a tenant's SCIM endpoint; only the SHA-256 of a token is stored.
CREATE TABLE scim_tokens (
    id            TEXT    PRIMARY KEY,
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id),
    name          TEXT    NOT NULL,
    token_hash    TEXT    NOT NULL UNIQUE,
    token_prefix  TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    revoked_at    BIGINT
);
CREATE INDEX scim_tokens_tenant ON scim_tokens (tenant_id);

-- A user as the identity provider pushed it over SCIM: the resource it sent (without `id` and
-- `meta`, which are ours) and the user row it provisions.
CREATE TABLE scim_users (
    id               TEXT    PRIMARY KEY,       -- the SCIM `id`
    tenant_id        TEXT    NOT NULL,
    subject          TEXT    NOT NULL,
    user_name        TEXT    NOT NULL,
    user_name_lower  TEXT    NOT NULL,          -- `userName` is unique regardless of case (RFC 7643 §4.1.1)
    external_id      TEXT,
    resource         TEXT    NOT NULL,          -- JSON
    version          BIGINT  NOT NULL,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    UNIQUE (tenant_id, subject),
    UNIQUE (tenant_id, user_name_lower),
    FOREIGN KEY (tenant_id, subject) REFERENCES users (tenant_id, subject)
);

-- Groups: pushed over SCIM, or named by an administrator for the policy they carry. A token's
-- groups claim is matched against `name`.
CREATE TABLE groups (
    id           TEXT    PRIMARY KEY,           -- also the SCIM `id`
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id),
    name         TEXT    NOT NULL,              -- SCIM `displayName`
    models       TEXT,                          -- JSON array; NULL = does not narrow the tenant's list
    role         TEXT    CHECK (role IN ('admin')),
    resource     TEXT,                          -- the SCIM resource (JSON, without members); NULL = not from SCIM
    version      BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE group_members (
    group_id   TEXT    NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    tenant_id  TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    PRIMARY KEY (group_id, subject)
);
CREATE INDEX group_members_user ON group_members (tenant_id, subject);

-- Who changed what, when: one row per change, committed with it.
CREATE TABLE audit_events (
    id          TEXT    PRIMARY KEY,            -- UUIDv7: ordered by time
    at          BIGINT  NOT NULL,
    actor_kind  TEXT    NOT NULL CHECK (actor_kind IN ('platform', 'tenant_admin', 'scim', 'system')),
    actor_id    TEXT,
    tenant_id   TEXT,
    action      TEXT    NOT NULL,
    target      TEXT,
    before      TEXT,                           -- JSON
    after       TEXT,                           -- JSON
    request_id  TEXT
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_tenant_at ON audit_events (tenant_id, at);
