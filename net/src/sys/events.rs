//! Events published in the system account.

use crate::server::{ClientEntry, ClosedClient, Shared};

pub(crate) fn client_connected(_srv: &Shared, _e: &ClientEntry) {}

pub(crate) fn client_disconnected(_srv: &Shared, _c: &ClosedClient) {}

pub(crate) fn lame_duck(_srv: &Shared) {}
