//! The monitoring HTTP(S) listener (hyper, HTTP/1.1) and its routes.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::build::{
    AccountStatzOptions, AccountzOptions, ConnState, ConnzOptions, SortOpt, SubszOptions,
};
use crate::server::{lock, Shared};
use crate::transport::Transport;

/// The endpoints, as listed on the index page and counted in `http_req_stats`.
const INDEX: &str = r#"<html lang="en">
<head><title>natsd monitoring</title></head>
<body>
<h1>natsd</h1>
<a href=./varz>General</a><br/>
<a href=./jsz>JetStream</a><br/>
<a href=./connz>Connections</a><br/>
<a href=./accountz>Accounts</a><br/>
<a href=./accstatz>Account Stats</a><br/>
<a href=./subsz>Subscriptions</a><br/>
<a href=./routez>Routes</a><br/>
<a href=./leafz>LeafNodes</a><br/>
<a href=./gatewayz>Gateways</a><br/>
<a href=./raftz>Raft Groups</a><br/>
<a href=./healthz>Health Probe</a><br/>
<a href=./metrics>Prometheus metrics</a><br/>
<a href=https://docs.nats.io/running-a-nats-service/nats_admin/monitoring>Help</a>
</body>
</html>
"#;

/// Accepts monitoring connections until shutdown; each is served on its own task.
pub(crate) async fn serve<T: Transport>(
    shared: Arc<Shared>,
    listener: T::Listener,
    tls: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            r = T::accept(&listener) => r,
            _ = shutdown.changed() => return,
        };
        let (stream, _peer) = match accepted {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("Error accepting monitoring connection: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_conn(shared, stream, shutdown).await,
                Some(acceptor) => {
                    let hs = tokio::time::timeout(
                        std::time::Duration::from_secs(5),
                        acceptor.accept(stream),
                    )
                    .await;
                    if let Ok(Ok(s)) = hs {
                        serve_conn(shared, s, shutdown).await;
                    }
                }
            }
        });
    }
}

async fn serve_conn<S>(shared: Arc<Shared>, stream: S, mut shutdown: watch::Receiver<bool>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req: Request<Incoming>| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(handle(&shared, req.uri().path(), req.uri().query())) }
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.wait_for(|s| *s) => conn.as_mut().graceful_shutdown(),
    }
}

fn respond(
    status: StatusCode,
    ctype: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}

fn json<T: serde::Serialize>(v: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec_pretty(v) {
        Ok(b) => respond(StatusCode::OK, "application/json", b),
        Err(e) => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            e.to_string(),
        ),
    }
}

/// `/healthz`: 503 with the reason when unhealthy (Go: HandleHealthz).
fn healthz(h: &super::types::HealthStatus) -> Response<Full<Bytes>> {
    let mut r = json(h);
    if h.status != "ok" {
        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    }
    r
}

fn bad_request(msg: String) -> Response<Full<Bytes>> {
    respond(StatusCode::BAD_REQUEST, "text/plain; charset=utf-8", msg)
}

/// Routes one request. `path` has the configured `http_base_path` in front.
pub(crate) fn handle(srv: &Shared, path: &str, query: Option<&str>) -> Response<Full<Bytes>> {
    let base = srv.opts().http_base_path.trim_end_matches('/').to_owned();
    let Some(rest) = path.strip_prefix(base.as_str()) else {
        return respond(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "404 page not found\n",
        );
    };
    let endpoint = if rest.is_empty() { "/" } else { rest };
    let q = Query::parse(query.unwrap_or(""));
    let known = matches!(
        endpoint,
        "/" | "/varz"
            | "/connz"
            | "/routez"
            | "/gatewayz"
            | "/leafz"
            | "/subsz"
            | "/subscriptionsz"
            | "/accountz"
            | "/accstatz"
            | "/jsz"
            | "/healthz"
            | "/raftz"
            | "/ipqueuesz"
            | "/metrics"
    );
    if !known {
        return respond(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "404 page not found\n",
        );
    }
    *lock(&srv.http_req_stats)
        .entry(endpoint.to_owned())
        .or_insert(0) += 1;
    let r = match endpoint {
        "/" => Ok(respond(StatusCode::OK, "text/html; charset=utf-8", INDEX)),
        "/varz" => Ok(json(&srv.varz())),
        "/connz" => connz_options(&q)
            .and_then(|o| srv.connz(&o))
            .map(|z| json(&z)),
        "/routez" => q.bool("subs").map(|subs| json(&srv.routez(subs))),
        "/gatewayz" => gatewayz_filter(&q).map(|f| json(&srv.gatewayz_with(&f))),
        "/leafz" => q.bool("subs").map(|subs| json(&srv.leafz_with(subs))),
        "/subsz" | "/subscriptionsz" => subsz_options(&q).map(|o| {
            let z = srv.subsz(&o);
            if o.subscriptions {
                json(&z)
            } else {
                // Go: without `subs`, only the sublist counters are shown.
                json(&z.stats)
            }
        }),
        "/accountz" => srv
            .accountz(&AccountzOptions {
                account: q.get("acc").to_owned(),
            })
            .map(|z| json(&z)),
        "/accstatz" => q.bool("unused").map(|unused| {
            let accounts = q
                .get("accs")
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            json(&srv.account_statz(&AccountStatzOptions {
                accounts,
                include_unused: unused,
            }))
        }),
        "/jsz" => jsz_options(&q).map(|o| json(&srv.jsz_with(&o))),
        "/healthz" => Ok(healthz(&srv.healthz())),
        "/raftz" => Ok(json(&srv.raftz())),
        "/ipqueuesz" => Ok(json(&serde_json::Map::new())),
        "/metrics" => Ok(respond(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            super::metrics::render(srv),
        )),
        _ => Err(String::new()),
    };
    r.unwrap_or_else(bad_request)
}

/// `/gatewayz` filters: `gw_name`, `accs`, `acc_name` (Go: monitor.go HandleGatewayz).
fn gatewayz_filter(q: &Query) -> Result<crate::gateway::monitor::GatewayzFilter, String> {
    Ok(crate::gateway::monitor::GatewayzFilter {
        name: q.get("gw_name").to_owned(),
        accounts: q.bool("accs")?,
        account: q.get("acc_name").to_owned(),
    })
}

/// Decoded `key=value` pairs of a query string.
#[derive(Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(q: &str) -> Self {
        Self(
            q.split('&')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Go's strconv.ParseBool; absent is false.
    fn bool(&self, key: &str) -> Result<bool, String> {
        match self.get(key) {
            "" => Ok(false),
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
            v => Err(format!(
                "Error decoding boolean for '{key}': strconv.ParseBool: parsing \"{v}\": invalid syntax"
            )),
        }
    }

    /// A non-negative count; absent or negative is 0. Values past i64 are rejected as Go does.
    fn count(&self, key: &str) -> Result<usize, String> {
        match self.get(key) {
            "" => Ok(0),
            v => v
                .parse::<i64>()
                .map(|n| usize::try_from(n.max(0)).unwrap_or(usize::MAX))
                .map_err(|_| {
                    format!("Error decoding int for '{key}': strconv.Atoi: parsing \"{v}\": value out of range")
                }),
        }
    }
}

fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let decoded = (c == b'%' && i + 2 < b.len())
            .then(|| Some(hex(b[i + 1])? * 16 + hex(b[i + 2])?))
            .flatten();
        match (c, decoded) {
            (_, Some(v)) => {
                out.push(v);
                i += 2;
            }
            (b'+', None) => out.push(b' '),
            (c, None) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn connz_options(q: &Query) -> Result<ConnzOptions, String> {
    let subs = q.get("subs");
    let (subscriptions, subscriptions_detail) = if subs == "detail" {
        (false, true)
    } else {
        (q.bool("subs")?, false)
    };
    let state = match q.get("state") {
        "" | "open" => ConnState::Open,
        "closed" => ConnState::Closed,
        "any" | "all" => ConnState::Any,
        other => return Err(format!("invalid connection state: {other}")),
    };
    let cid = match q.get("cid") {
        "" => 0,
        v => v
            .parse::<u64>()
            .map_err(|_| format!("Error decoding int for 'cid': invalid value \"{v}\""))?,
    };
    Ok(ConnzOptions {
        sort: SortOpt::parse(q.get("sort"))?,
        username: q.bool("auth")?,
        subscriptions,
        subscriptions_detail,
        offset: q.count("offset")?,
        limit: q.count("limit")?,
        cid,
        state,
        user: q.get("user").to_owned(),
        account: q.get("acc").to_owned(),
    })
}

/// Go: HandleJsz's query (`acc`, `accounts`, `streams`, `consumers`, `config`, `offset`,
/// `limit`).
pub(crate) fn jsz_options(q: &Query) -> Result<super::JszOptions, String> {
    Ok(super::JszOptions {
        account: q.get("acc").to_owned(),
        accounts: q.bool("accounts")?,
        streams: q.bool("streams")?,
        consumers: q.bool("consumers")?,
        config: q.bool("config")?,
        offset: q.count("offset")?,
        limit: q.count("limit")?,
    })
}

pub(crate) fn subsz_options(q: &Query) -> Result<SubszOptions, String> {
    let test = q.get("test").to_owned();
    if !test.is_empty() && !natsd_core::subject::is_valid_literal_subject(test.as_bytes()) {
        return Err(format!(
            "invalid test subject, must be valid publish subject: {test}"
        ));
    }
    Ok(SubszOptions {
        // Go: `subs=detail` lists them too.
        subscriptions: q.get("subs") == "detail" || q.bool("subs")?,
        offset: q.count("offset")?,
        limit: q.count("limit")?,
        test,
        account: q.get("acc").to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode() {
        let q = Query::parse("acc=%24G&subs=detail&limit=99999999999999999999&x");
        assert_eq!(q.get("acc"), "$G");
        assert!(q.count("limit").is_err());
        let o = connz_options(&Query::parse("subs=detail&offset=-3&limit=2")).unwrap();
        assert!(o.subscriptions_detail);
        assert_eq!((o.offset, o.limit), (0, 2));
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
