//! The worker's side of a reload that changes which accounts have JetStream
//! (see [`super::super::reload`]).

use super::super::{answer_not_enabled_in, unsubscribe_account, AccountChange};
use super::{tag, Worker};

impl Worker {
    /// Applies one change, in queue order with the account's messages.
    pub(super) fn change_account(&mut self, c: AccountChange) {
        self.detail_dirty = true;
        match c {
            AccountChange::Add(a) => {
                self.accounts.insert(a.name.clone(), *a);
            }
            AccountChange::Limits(name, l) => {
                if let Some(a) = self.accounts.get_mut(&name) {
                    a.js.set_account_limits(l);
                }
            }
            AccountChange::Remove(name) => {
                let now = self.now();
                let Some(a) = self.accounts.get_mut(&name) else {
                    return;
                };
                // What it stored is synced and acknowledged before it lets go.
                let mut out = Vec::new();
                tag(&mut out, &name, a.js.commit(now));
                self.emit(&mut out);
                let Some(a) = self.accounts.remove(&name) else {
                    return;
                };
                unsubscribe_account(&self.srv, &a.acc);
                answer_not_enabled_in(&self.srv, &self.srv.opts(), &a.acc);
            }
        }
    }
}
