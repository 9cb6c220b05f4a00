//! leakview analyzer: replays a trace into allocation lifetimes, answers "what was outstanding
//! at moment T", groups and ranks it, symbolizes stacks and renders reports.

#![forbid(unsafe_code)]

pub mod symbolize;
