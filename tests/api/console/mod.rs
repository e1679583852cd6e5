//! The web console's server side: sessions, the admin API through a session, SSO.

mod platform;
mod sso;
