//! The nats-server config-file format: parser to a value tree, and mapping to [`crate::options`].
