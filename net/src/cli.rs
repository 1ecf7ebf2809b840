//! The `natsd` command line: nats-server's flags.
