//! Client (and leaf) authentication against the server's configuration.
//!
//! Go: server/auth.go processClientOrLeafAuthentication, config mode (no operator/JWT). The
//! order of the checks follows it:
//!
//! 1. no authentication configured: everyone lands in the global account;
//! 2. nkey users: the CONNECT `nkey` (or the `no_auth_user` when it names an nkey and the client
//!    sent no credentials) and a signature of the nonce;
//! 3. users: with `verify_and_map`, the certificate's identities; otherwise the CONNECT `user`
//!    (or `no_auth_user` when the client sent no credentials) and its password;
//! 4. the single `user`/`pass`, or the `token`, of the authorization block.
//!
//! Failures all look the same on the wire (`-ERR 'Authorization Violation'`); the
//! [`AuthError`] carries the reason for the log only.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use super::b64;
use crate::account::validate::implicit_no_auth_user;
use crate::options::{Options, Permissions, User, GLOBAL_ACCOUNT};
use crate::proto::info::ConnectInfo;
use crate::rng::SplitMix64;

/// What the client is told on any authentication failure.
pub const AUTH_VIOLATION: &str = "Authorization Violation";

/// Random bytes in a nonce (Go: server/nkey.go nonceRawLen).
const NONCE_RAW_LEN: usize = 11;

/// The kind of connection, for `allowed_connection_types`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConnType {
    /// A NATS client on the client port.
    Standard,
    /// A NATS client over WebSocket.
    Websocket,
    /// An MQTT client.
    Mqtt,
    /// An MQTT client over WebSocket.
    MqttWs,
    /// A leaf node.
    Leafnode,
    /// A leaf node over WebSocket.
    LeafnodeWs,
    /// An in-process (embedded) client.
    InProcess,
}

impl ConnType {
    /// The config/JWT spelling (`STANDARD`, `WEBSOCKET`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "STANDARD",
            Self::Websocket => "WEBSOCKET",
            Self::Mqtt => "MQTT",
            Self::MqttWs => "MQTT_WS",
            Self::Leafnode => "LEAFNODE",
            Self::LeafnodeWs => "LEAFNODE_WS",
            Self::InProcess => "IN_PROCESS",
        }
    }

    /// Parses a config spelling, case-insensitively (as nats-server does).
    pub fn parse(s: &str) -> Option<Self> {
        let all = [
            Self::Standard,
            Self::Websocket,
            Self::Mqtt,
            Self::MqttWs,
            Self::Leafnode,
            Self::LeafnodeWs,
            Self::InProcess,
        ];
        all.into_iter().find(|t| t.as_str().eq_ignore_ascii_case(s))
    }
}

/// Who the connection turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthOutcome {
    /// The account the connection is bound to (`"$G"` for the global account).
    pub account: String,
    /// The user name, for user/password, TLS-mapped and single-user logins.
    pub user: Option<String>,
    /// The public nkey, for nkey logins.
    pub nkey: Option<String>,
    /// Permissions in force; `None` allows everything.
    pub permissions: Option<Permissions>,
}

impl AuthOutcome {
    fn global() -> Self {
        Self {
            account: GLOBAL_ACCOUNT.to_owned(),
            user: None,
            nkey: None,
            permissions: None,
        }
    }
}

/// Why authentication failed. For the log only: the wire always gets [`AUTH_VIOLATION`].
/// Secrets (passwords, tokens, signatures) never appear in these messages.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// The client presented no credentials and there is no `no_auth_user`.
    #[error("no credentials presented")]
    NoCredentials,
    /// No such user.
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    /// Wrong password.
    #[error("password mismatch for user {0:?}")]
    BadPassword(String),
    /// Wrong token.
    #[error("token mismatch")]
    BadToken,
    /// No such nkey user.
    #[error("unknown nkey {0:?}")]
    UnknownNkey(String),
    /// The nkey is not a valid public key.
    #[error("invalid nkey {0:?}")]
    InvalidNkey(String),
    /// Nkey login without `sig`.
    #[error("signature missing for nkey {0:?}")]
    MissingSignature(String),
    /// `sig` is not base64.
    #[error("signature for nkey {0:?} is not valid base64")]
    BadSignatureEncoding(String),
    /// `sig` does not verify against the nonce.
    #[error("signature not verified for nkey {0:?}")]
    BadSignature(String),
    /// The user may not connect over this kind of connection.
    #[error("user {user:?} not allowed on {} connections", conn_type.as_str())]
    ConnectionTypeNotAllowed {
        /// User name or nkey.
        user: String,
        /// The connection's kind.
        conn_type: ConnType,
    },
    /// `verify_and_map`: no certificate identity names a usable user.
    #[error("no user matches the client certificate")]
    NoCertificateMatch,
    /// A password-less user that only a certificate may select.
    #[error("user {0:?} requires a client certificate")]
    CertificateRequired(String),
}

impl AuthError {
    /// The text for `-ERR '…'`: the same for every failure.
    pub fn wire_message(&self) -> &'static str {
        AUTH_VIOLATION
    }
}

#[derive(Debug, Clone)]
struct Entry {
    /// User name, or the public nkey.
    id: String,
    password: String,
    account: String,
    permissions: Option<Permissions>,
    /// `None`: every kind allowed. `Some` with no known kind allows nothing (fail closed).
    allowed: Option<BTreeSet<ConnType>>,
}

impl Entry {
    fn allows(&self, t: ConnType) -> bool {
        self.allowed.as_ref().is_none_or(|set| set.contains(&t))
    }

    fn outcome(&self, nkey: bool) -> AuthOutcome {
        AuthOutcome {
            account: self.account.clone(),
            user: (!nkey).then(|| self.id.clone()),
            nkey: nkey.then(|| self.id.clone()),
            permissions: self.permissions.clone(),
        }
    }
}

/// Who a credential-less client becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NoAuth {
    None,
    /// `no_auth_user`.
    User(String),
    /// nats-server's implicit global-account user when the accounts block holds only the system
    /// account and there is no authorization block.
    ImplicitGlobal,
}

/// The server's authentication configuration, compiled once from [`Options`].
#[derive(Debug, Clone)]
pub struct Authenticator {
    required: bool,
    single_user: Option<(String, String)>,
    token: Option<String>,
    single_permissions: Option<Permissions>,
    users: BTreeMap<String, Entry>,
    nkeys: BTreeMap<String, Entry>,
    no_auth: NoAuth,
    tls_map: bool,
    bcrypt: bool,
}

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// Go: server/auth.go isBcrypt — `$2a$`, `$2b$`, `$2x$`, `$2y$` followed by a two-digit cost.
fn is_bcrypt(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 7
        && b[0] == b'$'
        && b[1] == b'2'
        && matches!(b[2], b'a' | b'b' | b'x' | b'y')
        && b[3] == b'$'
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
}

/// Equality whose running time depends only on the lengths, not on where the inputs differ.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(!x);
    }
    diff == 0
}

/// Go: server/auth.go comparePasswords — bcrypt when the configured secret is a hash.
fn compare_secret(configured: &str, given: &str) -> bool {
    if is_bcrypt(configured) {
        bcrypt::verify(given, configured).unwrap_or(false)
    } else {
        ct_eq(configured.as_bytes(), given.as_bytes())
    }
}

fn allowed_types(list: &[String]) -> Option<BTreeSet<ConnType>> {
    if list.is_empty() {
        return None;
    }
    // Unknown spellings are a config error (see account::validate); here they simply add nothing.
    Some(list.iter().filter_map(|s| ConnType::parse(s)).collect())
}

impl Authenticator {
    /// Compiles the authorization block, the accounts' users and `no_auth_user`.
    pub fn new(opts: &Options) -> Self {
        let auth = &opts.authorization;
        let account_defaults: BTreeMap<&str, Option<&Permissions>> = opts
            .accounts
            .iter()
            .map(|a| (a.name.as_str(), a.default_permissions.as_ref()))
            .collect();
        let mut users = BTreeMap::new();
        let mut nkeys = BTreeMap::new();
        let mut bcrypt = false;
        let mut add = |u: &User, account: &str| {
            // Precedence: the user's own, the account's default, the authorization block's.
            let permissions = u
                .permissions
                .clone()
                .or_else(|| account_defaults.get(account).copied().flatten().cloned())
                .or_else(|| auth.default_permissions.clone());
            let password = u.password.clone().unwrap_or_default();
            bcrypt |= is_bcrypt(&password);
            let mk = |id: &str| Entry {
                id: id.to_owned(),
                password: password.clone(),
                account: account.to_owned(),
                permissions: permissions.clone(),
                allowed: allowed_types(&u.allowed_connection_types),
            };
            if let Some(k) = nonempty(&u.nkey) {
                nkeys.insert(k.to_owned(), mk(k));
            } else if let Some(name) = nonempty(&u.username) {
                users.insert(name.to_owned(), mk(name));
            }
        };
        for u in &auth.users {
            add(u, u.account.as_deref().unwrap_or(GLOBAL_ACCOUNT));
        }
        for acc in &opts.accounts {
            for u in &acc.users {
                add(u, &acc.name);
            }
        }
        let single_user =
            nonempty(&auth.user).map(|u| (u.to_owned(), auth.pass.clone().unwrap_or_default()));
        let token = nonempty(&auth.token).map(str::to_owned);
        bcrypt |= single_user.as_ref().is_some_and(|(_, p)| is_bcrypt(p));
        bcrypt |= token.as_deref().is_some_and(is_bcrypt);
        let no_auth = match nonempty(&opts.no_auth_user) {
            Some(n) => NoAuth::User(n.to_owned()),
            None if implicit_no_auth_user(opts) => NoAuth::ImplicitGlobal,
            None => NoAuth::None,
        };
        // Go: configureAuthorization — a TLS map without users requires nothing by itself.
        let required =
            !users.is_empty() || !nkeys.is_empty() || single_user.is_some() || token.is_some();
        Self {
            required,
            single_user,
            token,
            single_permissions: auth
                .permissions
                .clone()
                .or_else(|| auth.default_permissions.clone()),
            users,
            nkeys,
            no_auth,
            tls_map: opts.tls.as_ref().is_some_and(|t| t.verify_and_map),
            bcrypt,
        }
    }

    /// Is authentication enforced?
    pub fn auth_required(&self) -> bool {
        self.required
    }

    /// The INFO `auth_required` flag: false when an explicit `no_auth_user` lets clients in
    /// without credentials (Go: server.go createClient), even though credentials are checked.
    pub fn info_auth_required(&self) -> bool {
        self.required && !matches!(self.no_auth, NoAuth::User(_))
    }

    /// Nkey users are configured: INFO must carry a nonce for them to sign.
    pub fn needs_nonce(&self) -> bool {
        !self.nkeys.is_empty()
    }

    /// Some configured secret is a bcrypt hash: run [`Self::authenticate`] off the I/O threads.
    pub fn uses_bcrypt(&self) -> bool {
        self.bcrypt
    }

    /// Checks a CONNECT. `nonce` is the nonce string sent in INFO (what the client signed),
    /// `tls_identities` the client certificate's identities in the order the shell found them
    /// (e-mail SANs, DNS SANs, URIs, then the RFC 4514 subject DN), empty without a certificate.
    pub fn authenticate(
        &self,
        c: &ConnectInfo,
        nonce: &[u8],
        tls_identities: &[String],
        conn_type: ConnType,
    ) -> Result<AuthOutcome, AuthError> {
        if !self.required {
            return Ok(AuthOutcome::global());
        }
        let user = nonempty(&c.user);
        let pass = nonempty(&c.pass);
        let token = nonempty(&c.auth_token);
        let nkey = nonempty(&c.nkey);
        let no_creds = user.is_none() && pass.is_none() && token.is_none();

        if !self.nkeys.is_empty() {
            let mut chosen = nkey;
            if chosen.is_none() && no_creds {
                if let NoAuth::User(n) = &self.no_auth {
                    if self.nkeys.contains_key(n) {
                        chosen = Some(n.as_str());
                    }
                }
            }
            if let Some(k) = chosen {
                let entry = self
                    .nkeys
                    .get(k)
                    .ok_or_else(|| AuthError::UnknownNkey(k.to_owned()))?;
                if !entry.allows(conn_type) {
                    return Err(AuthError::ConnectionTypeNotAllowed {
                        user: k.to_owned(),
                        conn_type,
                    });
                }
                // Go: the no_auth_user's nkey needs no signature, even when named explicitly;
                // that grants nothing a credential-less client would not get anyway.
                if !matches!(&self.no_auth, NoAuth::User(n) if n == k) {
                    verify_signature(k, c.sig.as_deref(), nonce)?;
                }
                return Ok(entry.outcome(true));
            }
        }

        // Only the client port has a TLS block in the options, so only it maps certificates.
        let tls_map = self.tls_map && conn_type == ConnType::Standard;
        if !self.users.is_empty() || self.no_auth == NoAuth::ImplicitGlobal {
            if tls_map && !self.users.is_empty() {
                // Go: checkClientTLSCertSubject — the certificate is the credential; a user in
                // CONNECT is ignored. Identities naming users barred from this kind are skipped.
                return tls_identities
                    .iter()
                    .filter_map(|id| self.users.get(id))
                    .find(|u| u.allows(conn_type))
                    .map(|u| u.outcome(false))
                    .ok_or(AuthError::NoCertificateMatch);
            }
            if no_creds {
                match &self.no_auth {
                    NoAuth::User(n) => {
                        if let Some(u) = self.users.get(n) {
                            // GHSA-hmmp-q8cx-v964: the no_auth_user is bound by its own
                            // allowed_connection_types like any other login.
                            if !u.allows(conn_type) {
                                return Err(AuthError::ConnectionTypeNotAllowed {
                                    user: n.clone(),
                                    conn_type,
                                });
                            }
                            return Ok(u.outcome(false));
                        }
                    }
                    NoAuth::ImplicitGlobal => return Ok(AuthOutcome::global()),
                    NoAuth::None => {}
                }
            }
            if let Some(name) = user {
                if let Some(u) = self.users.get(name) {
                    if !u.allows(conn_type) {
                        return Err(AuthError::ConnectionTypeNotAllowed {
                            user: name.to_owned(),
                            conn_type,
                        });
                    }
                    // Go: a password-less user that verify_and_map could select is a
                    // certificate-only identity; two empty passwords must not "match".
                    if u.password.is_empty()
                        && self.tls_map
                        && u.allows(ConnType::Standard)
                        && !matches!(&self.no_auth, NoAuth::User(n) if n == name)
                    {
                        return Err(AuthError::CertificateRequired(name.to_owned()));
                    }
                    if !compare_secret(&u.password, pass.unwrap_or_default()) {
                        return Err(AuthError::BadPassword(name.to_owned()));
                    }
                    return Ok(u.outcome(false));
                }
                if self.single_user.is_none() {
                    return Err(AuthError::UnknownUser(name.to_owned()));
                }
            }
        }

        if let Some(t) = &self.token {
            if compare_secret(t, token.unwrap_or_default()) {
                return Ok(AuthOutcome {
                    permissions: self.single_permissions.clone(),
                    ..AuthOutcome::global()
                });
            }
            return Err(AuthError::BadToken);
        }
        if let Some((u, p)) = &self.single_user {
            return match user {
                Some(name) if name == u => {
                    if compare_secret(p, pass.unwrap_or_default()) {
                        Ok(AuthOutcome {
                            user: Some(u.clone()),
                            permissions: self.single_permissions.clone(),
                            ..AuthOutcome::global()
                        })
                    } else {
                        Err(AuthError::BadPassword(u.clone()))
                    }
                }
                Some(name) => Err(AuthError::UnknownUser(name.to_owned())),
                None => Err(AuthError::NoCredentials),
            };
        }
        match (user, nkey) {
            (Some(name), _) => Err(AuthError::UnknownUser(name.to_owned())),
            (None, Some(k)) => Err(AuthError::UnknownNkey(k.to_owned())),
            (None, None) => Err(AuthError::NoCredentials),
        }
    }
}

impl Authenticator {
    /// Checks a leaf node's CONNECT against these users when `leafnodes.authorization` names
    /// nobody (Go: auth.go isLeafNodeAuthorized falling back to
    /// processClientOrLeafAuthentication). `Ok(None)`: the leaf is let in without a user, into
    /// the leaf listener's default account. nats-server 2.9.10 only asks a leaf for a user
    /// when users are configured; a token or the single `user`/`password` is never checked
    /// for leaves, and a leaf that names no user (and there is no `no_auth_user`) is let in.
    pub fn authenticate_leaf(
        &self,
        user: &str,
        pass: &str,
    ) -> Result<Option<AuthOutcome>, AuthError> {
        if !self.required || self.users.is_empty() {
            return Ok(None);
        }
        let conn_type = ConnType::Leafnode;
        let name = if !user.is_empty() {
            user
        } else if let (NoAuth::User(n), true) = (&self.no_auth, pass.is_empty()) {
            n.as_str()
        } else {
            return Ok(None);
        };
        let Some(u) = self.users.get(name) else {
            // Go: the no_auth_user may name an nkey user; a leaf cannot sign for it.
            return if user.is_empty() {
                Ok(None)
            } else {
                Err(AuthError::UnknownUser(name.to_owned()))
            };
        };
        if !u.allows(conn_type) {
            return Err(AuthError::ConnectionTypeNotAllowed {
                user: name.to_owned(),
                conn_type,
            });
        }
        // Go: the no_auth_user's own password is filled in for a leaf that sent none.
        if !user.is_empty() && !compare_secret(&u.password, pass) {
            return Err(AuthError::BadPassword(name.to_owned()));
        }
        Ok(Some(u.outcome(false)))
    }
}

/// Go: nats-server decodes `sig` as raw URL-safe base64, falling back to standard base64.
fn verify_signature(nkey: &str, sig: Option<&str>, nonce: &[u8]) -> Result<(), AuthError> {
    let sig = sig
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AuthError::MissingSignature(nkey.to_owned()))?;
    let raw = b64::decode_url_raw(sig.as_bytes())
        .or_else(|| b64::decode_std(sig.as_bytes()))
        .ok_or_else(|| AuthError::BadSignatureEncoding(nkey.to_owned()))?;
    let kp = nkeys::KeyPair::from_public_key(nkey)
        .map_err(|_| AuthError::InvalidNkey(nkey.to_owned()))?;
    kp.verify(nonce, &raw)
        .map_err(|_| AuthError::BadSignature(nkey.to_owned()))
}

/// A fresh nonce for INFO: 11 random bytes as raw URL-safe base64, 15 characters, like
/// nats-server's.
pub fn new_nonce(rng: &mut SplitMix64) -> String {
    let mut raw = [0u8; NONCE_RAW_LEN];
    rng.fill(&mut raw);
    b64::encode_url_raw(&raw)
}

#[cfg(test)]
mod tests;
