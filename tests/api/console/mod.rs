//! The web console's server side: sessions, the admin API through a session, SSO.

mod browser;
pub(crate) mod platform;
mod sso;
mod webdriver;
