//! Wire protocols: pure parsers and encoders, one module per protocol.

pub mod client;
pub mod headers;
pub mod info;
pub mod leaf;
pub mod route;
