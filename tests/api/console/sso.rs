//! Tenant admins' SSO against a real OpenID provider (see `tests/console/idp/`).
