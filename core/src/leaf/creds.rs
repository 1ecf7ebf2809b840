//! A remote's `credentials` file (`.creds`): a user JWT and the user's nkey seed, each between
//! nats-server's marker lines (Go: nats-io/jwt DecorateJWT / ParseDecoratedJWT and
//! ParseDecoratedNKey). The leaf sends the JWT in its CONNECT with the hub's nonce signed by
//! the seed (Go: leafnode.go sendLeafConnect).

use std::fmt;

/// A parsed `.creds` file.
#[derive(Clone, PartialEq, Eq)]
pub struct LeafCredentials {
    /// The user JWT.
    pub jwt: String,
    /// The user's nkey seed (`SU…`).
    pub seed: String,
}

impl fmt::Debug for LeafCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeafCredentials")
            .field("jwt", &self.jwt)
            .finish_non_exhaustive()
    }
}

impl LeafCredentials {
    /// Parses a `.creds` file's text; the seed must be a valid user seed.
    pub fn parse(text: &str) -> Result<Self, String> {
        let jwt = block(text, "JWT").ok_or("no user JWT found in credentials")?;
        let seed = block(text, "SEED").ok_or("no nkey seed found in credentials")?;
        nkeys::KeyPair::from_seed(&seed).map_err(|e| format!("invalid nkey seed: {e}"))?;
        Ok(Self { jwt, seed })
    }

    /// `nonce` signed with the seed, as raw URL-safe base64 (what `sig` carries).
    pub fn sign(&self, nonce: &str) -> Option<String> {
        let kp = nkeys::KeyPair::from_seed(&self.seed).ok()?;
        let sig = kp.sign(nonce.as_bytes()).ok()?;
        Some(crate::auth::b64::encode_url_raw(&sig))
    }
}

/// The first non-empty line after a `-----BEGIN … <kind>-----` marker, up to its END marker.
fn block(text: &str, kind: &str) -> Option<String> {
    let mut lines = text.lines().map(str::trim);
    lines.find(|l| l.starts_with("-----BEGIN") && l.trim_end_matches('-').ends_with(kind))?;
    lines
        .take_while(|l| !l.starts_with("------END") && !l.starts_with("-----END"))
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_creds_file_and_signs_the_nonce() {
        let kp = nkeys::KeyPair::new_user();
        let text = format!(
            "-----BEGIN NATS USER JWT-----\neyJhbGciOi.x.y\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\n\
             -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
            kp.seed().unwrap()
        );
        let c = LeafCredentials::parse(&text).unwrap();
        assert_eq!(c.jwt, "eyJhbGciOi.x.y");
        let sig = c.sign("abcNONCE").unwrap();
        let raw = crate::auth::b64::decode_url_raw(sig.as_bytes()).unwrap();
        assert!(kp.verify(b"abcNONCE", &raw).is_ok());
        assert!(!format!("{c:?}").contains("SU"), "the seed never shows");
        assert!(LeafCredentials::parse("nothing").is_err());
        let bad = text.replace(&kp.seed().unwrap(), "SUAXXXX");
        assert!(LeafCredentials::parse(&bad)
            .unwrap_err()
            .contains("invalid nkey seed"));
    }
}
