//! The system account: `$SYS.REQ.…` services and `$SYS.…` events.

pub(crate) mod events;

/// What the system-account machinery keeps per server.
#[derive(Debug, Default)]
pub(crate) struct SysState {}

/// (Re)installs the system services after the system account changed.
pub(crate) fn restart(_srv: &crate::server::Shared) {}
