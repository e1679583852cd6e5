-- The web console: sessions held server-side (any replica serves any page), the logins started
-- at a tenant's identity provider and not yet come back, and the OIDC client an issuer lends
-- the console.

-- The cookie carries a random token; only its SHA-256 is stored, so a leaked table opens nothing.
CREATE TABLE console_sessions (
    token_hash    TEXT    PRIMARY KEY,          -- hex SHA-256 of the cookie's token
    kind          TEXT    NOT NULL CHECK (kind IN ('platform', 'tenant_admin')),
    tenant_id     TEXT,
    subject       TEXT,
    csrf          TEXT    NOT NULL,             -- sent back in X-CSRF-Token on every write
    admin_key     TEXT,                         -- platform: a digest of the admin token it opened with
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    CHECK ((kind = 'platform') = (tenant_id IS NULL AND subject IS NULL))
);
CREATE INDEX console_sessions_user ON console_sessions (tenant_id, subject);
CREATE INDEX console_sessions_last_seen ON console_sessions (last_seen_at);

-- An SSO login between the redirect to the identity provider and its callback (10 minutes).
CREATE TABLE console_logins (
    state          TEXT    PRIMARY KEY,
    nonce          TEXT    NOT NULL,
    code_verifier  TEXT    NOT NULL,
    tenant_id      TEXT    NOT NULL,
    issuer_id      TEXT    NOT NULL,
    redirect_uri   TEXT    NOT NULL,
    created_at     INTEGER NOT NULL
);

-- The OIDC client (public, PKCE) registered at this issuer for console logins; NULL = none.
ALTER TABLE issuers ADD COLUMN console_client_id TEXT;
