//! Server-wide JetStream limits across accounts.
//!
//! Go keeps one server total (`js.memUsed`/`js.storeUsed`, and `js.memReserved`/
//! `js.storeReserved` from streams' `max_bytes`) that every account checks against the
//! server's `max_memory_store`/`max_file_store`. natsd's JetStreams are per account, so the
//! worker tells each one what the *other* accounts hold and reserve
//! ([`JetStream::set_other_usage`]); its own part it knows itself.

use natsd_core::jetstream::limits::ServerUsage;
use natsd_core::jetstream::service::JetStream;

/// What one account's JetStream holds and reserves.
pub(super) fn measure(js: &JetStream) -> ServerUsage {
    let (memory, storage) = js.usage();
    let (reserved_memory, reserved_storage) = js.reserved();
    ServerUsage {
        memory,
        storage,
        reserved_memory,
        reserved_storage,
    }
}

/// For each account, the sum over all the others.
pub(super) fn others(all: &[ServerUsage]) -> Vec<ServerUsage> {
    let total = all.iter().fold(ServerUsage::default(), |t, u| ServerUsage {
        memory: t.memory + u.memory,
        storage: t.storage + u.storage,
        reserved_memory: t.reserved_memory + u.reserved_memory,
        reserved_storage: t.reserved_storage + u.reserved_storage,
    });
    all.iter()
        .map(|u| ServerUsage {
            memory: total.memory - u.memory,
            storage: total.storage - u.storage,
            reserved_memory: total.reserved_memory - u.reserved_memory,
            reserved_storage: total.reserved_storage - u.reserved_storage,
        })
        .collect()
}

/// Gives every JetStream the usage of the others.
pub(super) fn share<'a>(jss: impl Iterator<Item = &'a mut JetStream>) {
    let mut jss: Vec<&mut JetStream> = jss.collect();
    // One account: nobody else holds anything (and its `others` stay at zero).
    if jss.len() < 2 {
        return;
    }
    let all: Vec<ServerUsage> = jss.iter().map(|js| measure(js)).collect();
    for (js, o) in jss.iter_mut().zip(others(&all)) {
        js.set_other_usage(o);
    }
}

#[cfg(test)]
mod tests {
    use natsd_core::jetstream::factory::DiskFactory;
    use natsd_core::jetstream::service::JsSettings;
    use natsd_core::jetstream::store::{MemDisk, SyncPolicy};

    use super::*;

    fn u(memory: u64, storage: u64, reserved_memory: u64, reserved_storage: u64) -> ServerUsage {
        ServerUsage {
            memory,
            storage,
            reserved_memory,
            reserved_storage,
        }
    }

    #[test]
    fn each_account_sees_the_sum_of_the_others() {
        let all = [
            u(1, 10, 100, 1000),
            u(2, 20, 200, 2000),
            u(4, 40, 400, 4000),
        ];
        assert_eq!(
            others(&all),
            [
                u(6, 60, 600, 6000),
                u(5, 50, 500, 5000),
                u(3, 30, 300, 3000)
            ]
        );
        assert_eq!(others(&all[..1]), [ServerUsage::default()]);
        assert!(others(&[]).is_empty());
    }

    fn js(max_memory: u64) -> JetStream {
        let d = MemDisk::new(1);
        let f = DiskFactory::new(move || d.clone(), SyncPolicy::Always);
        let settings = JsSettings {
            server_name: "S".into(),
            max_memory: Some(max_memory),
            ..JsSettings::default()
        };
        JetStream::new(settings, Box::new(f), 1)
    }

    fn create(js: &mut JetStream, name: &str, max_bytes: u64) -> serde_json::Value {
        let cfg = serde_json::json!({"name": name, "storage": "memory", "max_bytes": max_bytes});
        let out = js.api(
            &format!("$JS.API.STREAM.CREATE.{name}"),
            Some("r"),
            cfg.to_string().as_bytes(),
            1,
        );
        serde_json::from_slice(&out[0].payload).expect("JSON reply")
    }

    #[test]
    fn a_server_limit_holds_across_accounts() {
        let (mut a, mut b) = (js(1000), js(1000));
        assert!(create(&mut a, "A", 600)["error"].is_null());
        share([&mut a, &mut b].into_iter());
        assert_eq!(measure(&a).reserved_memory, 600);
        // 600 of the server's 1000 are A's: B gets 400 at most.
        assert_eq!(create(&mut b, "B", 401)["error"]["err_code"], 10028);
        assert!(create(&mut b, "B", 400)["error"].is_null());
        share([&mut a, &mut b].into_iter());
        assert_eq!(create(&mut a, "A2", 1)["error"]["err_code"], 10028);
    }
}
