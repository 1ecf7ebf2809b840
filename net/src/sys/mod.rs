//! The system account: `$SYS.REQ.…` services and `$SYS.…` events.

pub(crate) mod events;

/// What the system-account machinery keeps per server.
#[derive(Debug, Default)]
pub(crate) struct SysState {}
