//! NATS message headers (`NATS/1.0` blocks): parse and encode.
