//! The web console's server side: sessions, the admin API through a session, SSO.

mod browser;
mod platform;
mod sso;
mod webdriver;
