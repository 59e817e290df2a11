//! The YouTube plugin: parameters, sources and handlers.

pub mod codes;
pub mod duration;
pub mod ids;
pub mod params;
