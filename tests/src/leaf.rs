//! Leaf-node scenarios: one test per pairing of hub and leaf kinds.

use std::future::Future;

use crate::{ServerKind, SCENARIO};

/// Expands each named scenario `async fn name(hub: ServerKind, leaf: ServerKind)` into a
/// module of four `#[tokio::test]`s, one per pairing of natsd and nats-server 2.9.10 (the
/// nats-server–nats-server one checks the expectations themselves).
#[macro_export]
macro_rules! leaf_pairs {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                use $crate::ServerKind::{NatsServer, Natsd};

                #[tokio::test]
                async fn natsd_hub_natsd_leaf() {
                    $crate::leaf::run(Natsd, Natsd, super::$name).await;
                }

                #[tokio::test]
                async fn natsd_hub_nats_server_leaf() {
                    $crate::leaf::run(Natsd, NatsServer, super::$name).await;
                }

                #[tokio::test]
                async fn nats_server_hub_natsd_leaf() {
                    $crate::leaf::run(NatsServer, Natsd, super::$name).await;
                }

                #[tokio::test]
                async fn nats_server_hub_nats_server_leaf() {
                    $crate::leaf::run(NatsServer, NatsServer, super::$name).await;
                }
            }
        )+
    };
}

/// Runs one pairing of a scenario within [`SCENARIO`]; a kind that is not installed skips it
/// with a note.
pub async fn run<F, Fut>(hub: ServerKind, leaf: ServerKind, scenario: F)
where
    F: FnOnce(ServerKind, ServerKind) -> Fut,
    Fut: Future<Output = ()>,
{
    for k in [hub, leaf] {
        if !k.available() {
            eprintln!("note: {} is not installed; scenario skipped", k.name());
            return;
        }
        let _ = k.binary();
    }
    if tokio::time::timeout(SCENARIO, scenario(hub, leaf))
        .await
        .is_err()
    {
        panic!(
            "scenario with a {} hub and a {} leaf did not finish within {SCENARIO:?}",
            hub.name(),
            leaf.name()
        );
    }
}
