//! The client protocol: parser of client → server ops, encoders of server → client ops.
