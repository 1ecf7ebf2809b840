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
mod tests {
    use super::*;
    use crate::options::{AccountConfig, Authorization, SubjectPermission, TlsConfig};

    fn user(name: &str, pass: &str) -> User {
        User {
            username: Some(name.to_owned()),
            password: Some(pass.to_owned()),
            ..User::default()
        }
    }

    fn connect(user: Option<&str>, pass: Option<&str>) -> ConnectInfo {
        ConnectInfo {
            user: user.map(str::to_owned),
            pass: pass.map(str::to_owned),
            echo: true,
            ..ConnectInfo::default()
        }
    }

    fn perms(allow_pub: &str) -> Permissions {
        Permissions {
            publish: Some(SubjectPermission {
                allow: vec![allow_pub.to_owned()],
                deny: vec![],
            }),
            ..Permissions::default()
        }
    }

    fn auth(opts: &Options, c: &ConnectInfo) -> Result<AuthOutcome, AuthError> {
        Authenticator::new(opts).authenticate(c, b"nonce", &[], ConnType::Standard)
    }

    #[test]
    fn no_auth_configured_lets_everyone_into_global() {
        let opts = Options::default();
        let a = Authenticator::new(&opts);
        assert!(
            !a.auth_required() && !a.info_auth_required() && !a.needs_nonce() && !a.uses_bcrypt()
        );
        let out = auth(&opts, &connect(Some("anyone"), Some("x"))).unwrap();
        assert_eq!(out, AuthOutcome::global());
    }

    #[test]
    fn single_user_plain() {
        let mut opts = Options::default();
        opts.authorization.user = Some("derek".into());
        opts.authorization.pass = Some("s3cr3t".into());
        assert!(Authenticator::new(&opts).auth_required());
        let out = auth(&opts, &connect(Some("derek"), Some("s3cr3t"))).unwrap();
        assert_eq!(out.user.as_deref(), Some("derek"));
        assert_eq!(out.account, GLOBAL_ACCOUNT);
        assert_eq!(
            auth(&opts, &connect(Some("derek"), Some("nope"))),
            Err(AuthError::BadPassword("derek".into()))
        );
        assert_eq!(
            auth(&opts, &connect(Some("other"), Some("s3cr3t"))),
            Err(AuthError::UnknownUser("other".into()))
        );
        assert_eq!(
            auth(&opts, &connect(None, None)),
            Err(AuthError::NoCredentials)
        );
        assert!(auth(&opts, &connect(Some("derek"), None)).is_err());
    }

    #[test]
    fn single_user_bcrypt_all_prefixes() {
        let hash = bcrypt::hash("s3cr3t", 4).unwrap();
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            let h = format!("{prefix}{}", &hash[4..]);
            let mut opts = Options::default();
            opts.authorization.user = Some("derek".into());
            opts.authorization.pass = Some(h.clone());
            assert!(Authenticator::new(&opts).uses_bcrypt(), "{h}");
            assert!(
                auth(&opts, &connect(Some("derek"), Some("s3cr3t"))).is_ok(),
                "{prefix}"
            );
            assert!(auth(&opts, &connect(Some("derek"), Some("wrong"))).is_err());
            assert!(
                auth(&opts, &connect(Some("derek"), Some(&h))).is_err(),
                "the hash is not the password"
            );
        }
    }

    #[test]
    fn token_plain_and_bcrypt() {
        let mut opts = Options::default();
        opts.authorization.token = Some("tok".into());
        opts.authorization.permissions = Some(perms("only"));
        let ok = ConnectInfo {
            auth_token: Some("tok".into()),
            ..ConnectInfo::default()
        };
        let out = auth(&opts, &ok).unwrap();
        assert_eq!(out.account, GLOBAL_ACCOUNT);
        assert_eq!(out.user, None);
        assert_eq!(out.permissions, Some(perms("only")));
        let bad = ConnectInfo {
            auth_token: Some("tok2".into()),
            ..ConnectInfo::default()
        };
        assert_eq!(auth(&opts, &bad), Err(AuthError::BadToken));
        assert_eq!(
            auth(&opts, &ConnectInfo::default()),
            Err(AuthError::BadToken)
        );

        opts.authorization.token = Some(bcrypt::hash("tok", 4).unwrap());
        assert!(Authenticator::new(&opts).uses_bcrypt());
        assert!(auth(&opts, &ok).is_ok());
        assert!(auth(&opts, &bad).is_err());
    }

    #[test]
    fn users_list_and_accounts_users() {
        let mut opts = Options::default();
        opts.authorization.users = vec![user("alice", "a"), user("bob", "b")];
        opts.accounts = vec![AccountConfig {
            name: "A".into(),
            users: vec![user("carol", "c")],
            ..AccountConfig::default()
        }];
        let out = auth(&opts, &connect(Some("alice"), Some("a"))).unwrap();
        assert_eq!(
            (out.account.as_str(), out.user.as_deref()),
            (GLOBAL_ACCOUNT, Some("alice"))
        );
        let out = auth(&opts, &connect(Some("carol"), Some("c"))).unwrap();
        assert_eq!(
            (out.account.as_str(), out.user.as_deref()),
            ("A", Some("carol"))
        );
        assert!(auth(&opts, &connect(Some("carol"), Some("a"))).is_err());
        assert_eq!(
            auth(&opts, &connect(Some("dave"), Some("d"))),
            Err(AuthError::UnknownUser("dave".into()))
        );
        assert_eq!(
            auth(&opts, &connect(None, None)),
            Err(AuthError::NoCredentials)
        );
        // A bcrypt user in the list.
        opts.authorization
            .users
            .push(user("erin", &bcrypt::hash("e", 4).unwrap()));
        assert!(Authenticator::new(&opts).uses_bcrypt());
        assert!(auth(&opts, &connect(Some("erin"), Some("e"))).is_ok());
        assert!(auth(&opts, &connect(Some("erin"), Some("x"))).is_err());
    }

    #[test]
    fn permission_precedence() {
        let mut opts = Options::default();
        opts.authorization.default_permissions = Some(perms("global"));
        let mut own = user("own", "p");
        own.permissions = Some(perms("own"));
        opts.authorization.users = vec![own, user("plain", "p")];
        opts.accounts = vec![
            AccountConfig {
                name: "A".into(),
                users: vec![user("in_a", "p")],
                default_permissions: Some(perms("acc")),
                ..AccountConfig::default()
            },
            AccountConfig {
                name: "B".into(),
                users: vec![user("in_b", "p")],
                ..AccountConfig::default()
            },
        ];
        let p = |n: &str| {
            auth(&opts, &connect(Some(n), Some("p")))
                .unwrap()
                .permissions
        };
        assert_eq!(p("own"), Some(perms("own")));
        assert_eq!(p("plain"), Some(perms("global")));
        assert_eq!(p("in_a"), Some(perms("acc")));
        assert_eq!(p("in_b"), Some(perms("global")));
    }

    fn nkey_opts(kp: &nkeys::KeyPair) -> Options {
        Options {
            accounts: vec![AccountConfig {
                name: "A".into(),
                users: vec![User {
                    nkey: Some(kp.public_key()),
                    ..User::default()
                }],
                ..AccountConfig::default()
            }],
            ..Options::default()
        }
    }

    #[test]
    fn nkey_users_sign_the_nonce() {
        let kp = nkeys::KeyPair::new_user();
        let opts = nkey_opts(&kp);
        let a = Authenticator::new(&opts);
        assert!(a.needs_nonce() && a.auth_required());
        let mut rng = SplitMix64::new(9);
        let nonce = new_nonce(&mut rng);
        let sig = kp.sign(nonce.as_bytes()).unwrap();
        let mut c = ConnectInfo {
            nkey: Some(kp.public_key()),
            sig: Some(b64::encode_url_raw(&sig)),
            ..ConnectInfo::default()
        };
        let out = a
            .authenticate(&c, nonce.as_bytes(), &[], ConnType::Standard)
            .unwrap();
        assert_eq!(out.account, "A");
        assert_eq!(out.nkey, Some(kp.public_key()));
        assert_eq!(out.user, None);
        // Standard base64 with padding is accepted too.
        c.sig = Some(std_b64(&sig));
        assert!(a
            .authenticate(&c, nonce.as_bytes(), &[], ConnType::Standard)
            .is_ok());
        // Another nonce, a missing or mangled signature, another key: all refused.
        assert!(matches!(
            a.authenticate(&c, b"other-nonce", &[], ConnType::Standard),
            Err(AuthError::BadSignature(_))
        ));
        c.sig = None;
        assert!(matches!(
            a.authenticate(&c, nonce.as_bytes(), &[], ConnType::Standard),
            Err(AuthError::MissingSignature(_))
        ));
        c.sig = Some("!!!".into());
        assert!(matches!(
            a.authenticate(&c, nonce.as_bytes(), &[], ConnType::Standard),
            Err(AuthError::BadSignatureEncoding(_))
        ));
        let other = nkeys::KeyPair::new_user();
        let c2 = ConnectInfo {
            nkey: Some(other.public_key()),
            sig: Some(b64::encode_url_raw(&other.sign(nonce.as_bytes()).unwrap())),
            ..ConnectInfo::default()
        };
        assert!(matches!(
            a.authenticate(&c2, nonce.as_bytes(), &[], ConnType::Standard),
            Err(AuthError::UnknownNkey(_))
        ));
        // Someone else's signature over the right nonce, presented with our key.
        let c3 = ConnectInfo {
            nkey: Some(kp.public_key()),
            ..c2
        };
        assert!(matches!(
            a.authenticate(&c3, nonce.as_bytes(), &[], ConnType::Standard),
            Err(AuthError::BadSignature(_))
        ));
    }

    fn std_b64(data: &[u8]) -> String {
        let url = b64::encode_url_raw(data);
        let mut s: String = url
            .chars()
            .map(|c| match c {
                '-' => '+',
                '_' => '/',
                c => c,
            })
            .collect();
        while s.len() % 4 != 0 {
            s.push('=');
        }
        s
    }

    #[test]
    fn nonce_shape() {
        let mut rng = SplitMix64::new(1);
        let n1 = new_nonce(&mut rng);
        let n2 = new_nonce(&mut rng);
        assert_eq!(n1.len(), 15);
        assert_ne!(n1, n2);
        assert!(n1
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(
            new_nonce(&mut SplitMix64::new(1)),
            n1,
            "seeded: reproducible"
        );
    }

    #[test]
    fn no_auth_user_used_only_without_credentials() {
        let opts = Options {
            accounts: vec![AccountConfig {
                name: "A".into(),
                users: vec![user("anon", "whatever"), user("real", "pw")],
                ..AccountConfig::default()
            }],
            no_auth_user: Some("anon".into()),
            ..Options::default()
        };
        let a = Authenticator::new(&opts);
        assert!(a.auth_required());
        assert!(
            !a.info_auth_required(),
            "clients are not asked for credentials"
        );
        let out = auth(&opts, &connect(None, None)).unwrap();
        assert_eq!(
            (out.account.as_str(), out.user.as_deref()),
            ("A", Some("anon"))
        );
        // Credentials that fail do not fall back to the no_auth_user.
        assert!(auth(&opts, &connect(Some("real"), Some("bad"))).is_err());
        assert!(
            auth(&opts, &connect(None, Some("pw"))).is_err(),
            "a password alone is a credential"
        );
        let tok = ConnectInfo {
            auth_token: Some("t".into()),
            ..ConnectInfo::default()
        };
        assert!(auth(&opts, &tok).is_err());
        assert_eq!(
            auth(&opts, &connect(Some("real"), Some("pw")))
                .unwrap()
                .user
                .as_deref(),
            Some("real")
        );
    }

    #[test]
    fn no_auth_user_respects_allowed_connection_types() {
        let mut anon = user("anon", "");
        anon.allowed_connection_types = vec!["websocket".into()];
        let mut opts = Options::default();
        opts.authorization.users = vec![anon, user("real", "pw")];
        opts.no_auth_user = Some("anon".into());
        let a = Authenticator::new(&opts);
        let none = connect(None, None);
        assert!(matches!(
            a.authenticate(&none, b"", &[], ConnType::Standard),
            Err(AuthError::ConnectionTypeNotAllowed { .. })
        ));
        assert!(a.authenticate(&none, b"", &[], ConnType::Websocket).is_ok());
        assert!(a.authenticate(&none, b"", &[], ConnType::Leafnode).is_err());
    }

    #[test]
    fn no_auth_user_as_nkey() {
        let kp = nkeys::KeyPair::new_user();
        let mut opts = nkey_opts(&kp);
        opts.accounts[0].users.push(user("real", "pw"));
        opts.no_auth_user = Some(kp.public_key());
        let a = Authenticator::new(&opts);
        let out = a
            .authenticate(&connect(None, None), b"n", &[], ConnType::Standard)
            .unwrap();
        assert_eq!(out.nkey, Some(kp.public_key()));
        assert_eq!(out.account, "A");
        assert!(a
            .authenticate(
                &connect(Some("real"), Some("pw")),
                b"n",
                &[],
                ConnType::Standard
            )
            .is_ok());
    }

    #[test]
    fn allowed_connection_types() {
        let mut u = user("u", "p");
        u.allowed_connection_types = vec!["STANDARD".into(), "mqtt".into()];
        let mut bogus = user("v", "p");
        bogus.allowed_connection_types = vec!["CARRIER_PIGEON".into()];
        let mut opts = Options::default();
        opts.authorization.users = vec![u, bogus];
        let a = Authenticator::new(&opts);
        let c = connect(Some("u"), Some("p"));
        assert!(a.authenticate(&c, b"", &[], ConnType::Standard).is_ok());
        assert!(a.authenticate(&c, b"", &[], ConnType::Mqtt).is_ok());
        assert!(a.authenticate(&c, b"", &[], ConnType::Websocket).is_err());
        assert!(a.authenticate(&c, b"", &[], ConnType::Leafnode).is_err());
        let c = connect(Some("v"), Some("p"));
        assert!(
            a.authenticate(&c, b"", &[], ConnType::Standard).is_err(),
            "unknown types allow nothing"
        );
        // Nkey users too.
        let kp = nkeys::KeyPair::new_user();
        let mut opts = nkey_opts(&kp);
        opts.accounts[0].users[0].allowed_connection_types = vec!["LEAFNODE".into()];
        let a = Authenticator::new(&opts);
        let c = ConnectInfo {
            nkey: Some(kp.public_key()),
            sig: Some(b64::encode_url_raw(&kp.sign(b"n").unwrap())),
            ..ConnectInfo::default()
        };
        assert!(a.authenticate(&c, b"n", &[], ConnType::Leafnode).is_ok());
        assert!(matches!(
            a.authenticate(&c, b"n", &[], ConnType::Standard),
            Err(AuthError::ConnectionTypeNotAllowed { .. })
        ));
    }

    fn tls_map_opts() -> Options {
        let mut tls = TlsConfig::new("cert.pem".into(), "key.pem".into());
        tls.verify = true;
        tls.verify_and_map = true;
        let mut opts = Options {
            tls: Some(tls),
            ..Options::default()
        };
        let mut ws_only = User {
            username: Some("ws@example.com".into()),
            ..User::default()
        };
        ws_only.allowed_connection_types = vec!["WEBSOCKET".into()];
        opts.authorization.users = vec![
            User {
                username: Some("CN=alice,O=Acme".into()),
                ..User::default()
            },
            User {
                username: Some("bob@example.com".into()),
                ..User::default()
            },
            ws_only,
            user("pwuser", "pw"),
        ];
        opts
    }

    #[test]
    fn verify_and_map_matches_certificate_identities() {
        let opts = tls_map_opts();
        let a = Authenticator::new(&opts);
        let c = connect(None, None);
        let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let out = a.authenticate(
            &c,
            b"",
            &ids(&["host.example.com", "CN=alice,O=Acme"]),
            ConnType::Standard,
        );
        assert_eq!(out.unwrap().user.as_deref(), Some("CN=alice,O=Acme"));
        let out = a.authenticate(
            &c,
            b"",
            &ids(&["bob@example.com", "CN=alice,O=Acme"]),
            ConnType::Standard,
        );
        assert_eq!(
            out.unwrap().user.as_deref(),
            Some("bob@example.com"),
            "first identity wins"
        );
        // An identity naming a user barred from this kind is skipped.
        let out = a.authenticate(
            &c,
            b"",
            &ids(&["ws@example.com", "CN=alice,O=Acme"]),
            ConnType::Standard,
        );
        assert_eq!(out.unwrap().user.as_deref(), Some("CN=alice,O=Acme"));
        assert_eq!(
            a.authenticate(&c, b"", &ids(&["ws@example.com"]), ConnType::Standard),
            Err(AuthError::NoCertificateMatch)
        );
        assert_eq!(
            a.authenticate(&c, b"", &[], ConnType::Standard),
            Err(AuthError::NoCertificateMatch)
        );
        // CONNECT credentials do not replace the certificate.
        let pw = connect(Some("pwuser"), Some("pw"));
        assert_eq!(
            a.authenticate(&pw, b"", &[], ConnType::Standard),
            Err(AuthError::NoCertificateMatch)
        );
        // A claimed identity in CONNECT does not select a user either.
        let claim = connect(Some("CN=alice,O=Acme"), None);
        assert_eq!(
            a.authenticate(&claim, b"", &ids(&["CN=mallory"]), ConnType::Standard),
            Err(AuthError::NoCertificateMatch)
        );
    }

    #[test]
    fn certificate_only_users_need_a_certificate_elsewhere() {
        // On a listener that does not map (websocket here), a password-less user that the client
        // port's map could select must not log in by name alone.
        let opts = tls_map_opts();
        let a = Authenticator::new(&opts);
        let c = connect(Some("CN=alice,O=Acme"), None);
        assert_eq!(
            a.authenticate(&c, b"", &[], ConnType::Websocket),
            Err(AuthError::CertificateRequired("CN=alice,O=Acme".into()))
        );
        // A user limited to websocket is not selectable by the client port's map: Go lets it
        // in with its (empty) password.
        let c = connect(Some("ws@example.com"), None);
        assert!(a.authenticate(&c, b"", &[], ConnType::Websocket).is_ok());
        let c = connect(Some("pwuser"), Some("pw"));
        assert!(a.authenticate(&c, b"", &[], ConnType::Websocket).is_ok());
    }

    fn sys_only() -> Options {
        Options {
            system_account: Some("SYS".into()),
            accounts: vec![AccountConfig {
                name: "SYS".into(),
                users: vec![user("admin", "pw")],
                ..AccountConfig::default()
            }],
            ..Options::default()
        }
    }

    #[test]
    fn sys_only_accounts_without_auth_block_get_implicit_global_no_auth() {
        let opts = sys_only();
        let a = Authenticator::new(&opts);
        assert!(a.info_auth_required());
        assert_eq!(
            a.authenticate(&connect(None, None), b"", &[], ConnType::Standard),
            Ok(AuthOutcome::global())
        );
        let out = a
            .authenticate(
                &connect(Some("admin"), Some("pw")),
                b"",
                &[],
                ConnType::Standard,
            )
            .unwrap();
        assert_eq!(out.account, "SYS");
        assert!(a
            .authenticate(
                &connect(Some("admin"), Some("no")),
                b"",
                &[],
                ConnType::Standard
            )
            .is_err());
    }

    #[test]
    fn cve_2023_47090_sys_only_accounts_with_auth_block_keep_auth() {
        let mut opts = sys_only();
        opts.authorization = Authorization {
            users: vec![user("app", "apppw")],
            ..Authorization::default()
        };
        let a = Authenticator::new(&opts);
        assert_eq!(
            a.authenticate(&connect(None, None), b"", &[], ConnType::Standard),
            Err(AuthError::NoCredentials),
            "authentication must not be silently disabled"
        );
        assert!(a
            .authenticate(
                &connect(Some("app"), Some("apppw")),
                b"",
                &[],
                ConnType::Standard
            )
            .is_ok());
        // Even a block holding only a timeout counts as an authorization block.
        opts.authorization = Authorization {
            timeout: Some(std::time::Duration::from_secs(3)),
            ..Authorization::default()
        };
        let a = Authenticator::new(&opts);
        assert!(a
            .authenticate(&connect(None, None), b"", &[], ConnType::Standard)
            .is_err());
    }

    #[test]
    fn errors_say_nothing_on_the_wire() {
        for e in [
            AuthError::NoCredentials,
            AuthError::BadPassword("x".into()),
            AuthError::BadSignature("U".into()),
            AuthError::NoCertificateMatch,
        ] {
            assert_eq!(e.wire_message(), "Authorization Violation");
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn helpers() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(!ct_eq(b"ab", b"abc"));
        assert!(ct_eq(b"", b""));
        assert!(!ct_eq(b"", b"\xff"));
        assert!(is_bcrypt("$2a$04$abc"));
        assert!(is_bcrypt("$2x$10$"));
        assert!(!is_bcrypt("$2c$04$abc"));
        assert!(!is_bcrypt("$2a$4$abc"));
        assert!(!is_bcrypt("plain"));
        assert_eq!(ConnType::parse("leafnode"), Some(ConnType::Leafnode));
        assert_eq!(ConnType::parse("MQTT_WS"), Some(ConnType::MqttWs));
        assert_eq!(ConnType::parse("nope"), None);
    }
}
