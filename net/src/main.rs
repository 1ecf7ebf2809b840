//! The `natsd` binary.

fn main() {}
