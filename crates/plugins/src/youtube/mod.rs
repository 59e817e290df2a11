//! The YouTube plugin: parameters, sources and the five handlers.

pub mod api;
pub mod channel;
pub mod codes;
pub mod common;
pub mod declare;
#[cfg(test)]
mod declare_tests;
pub mod duration;
pub mod ids;
pub mod keyword;
pub mod params;
pub mod refresh;
pub mod source;
pub mod trending;
pub mod video;
