//! The dashboard against a real server on loopback over a real SQLite file: in a real
//! headless Chromium driven over WebDriver (sign-in, live overview, actions, enqueue form,
//! ideas and charts, hostile text, screenshots at 375 and 1440 px), and over plain HTTP
//! (security headers, CSRF refusals, sessions).

mod actions;
mod browser;
mod filters;
mod fixtures;
mod forms;
mod http;
mod pages;
#[allow(dead_code)]
#[path = "../api/support.rs"]
mod support;
