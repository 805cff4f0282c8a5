//! Google service-account keys: the OAuth 2.0 JWT-bearer grant that turns one into an access
//! token, and the RSA signature of V4 signed URLs.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coffer_guest_sdk::{Credential, Error, Result};
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::Value;
use sha2::Sha256;

/// The scope Velero's GCP plugin asks for.
pub const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";

/// A service-account key file (`"type": "service_account"`).
pub struct ServiceAccount {
    /// `client_email`: who signs.
    pub email: String,
    /// `token_uri`: where assertions are exchanged for access tokens.
    pub token_uri: String,
    key_id: Option<String>,
    signer: SigningKey<Sha256>,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount").field("email", &self.email).finish_non_exhaustive()
    }
}

fn field<'a>(json: &'a Value, name: &str) -> Result<&'a str> {
    json.get(name)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::Unauthenticated(format!("the credential (a service-account key) has no {name:?}")))
}

impl ServiceAccount {
    /// Reads a key file. Other credential types (`authorized_user`, `external_account`) are
    /// refused by name.
    pub fn parse(credential: &Credential) -> Result<Self> {
        let json: Value = serde_json::from_slice(credential.expose_bytes())
            .map_err(|e| Error::Unauthenticated(format!("the credential is not a service-account key (JSON): {e}")))?;
        match json.get("type").and_then(Value::as_str) {
            Some("service_account") => {}
            Some(other) => {
                return Err(Error::Unauthenticated(format!(
                    "credential type {other:?} is not supported: give a service-account key (\"type\": \"service_account\")"
                )));
            }
            None => return Err(Error::Unauthenticated("the credential has no \"type\": give a service-account key".into())),
        }
        let pem = field(&json, "private_key")?;
        let key = RsaPrivateKey::from_pkcs8_pem(pem)
            .map_err(|e| Error::Unauthenticated(format!("private_key in the credential is not a PKCS#8 RSA key: {e}")))?;
        Ok(ServiceAccount {
            email: field(&json, "client_email")?.to_owned(),
            token_uri: json.get("token_uri").and_then(Value::as_str).unwrap_or("https://oauth2.googleapis.com/token").to_owned(),
            key_id: json.get("private_key_id").and_then(Value::as_str).map(str::to_owned),
            signer: SigningKey::<Sha256>::new(key),
        })
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over `data`.
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        self.signer.sign(data).to_vec()
    }

    /// A signed JWT asserting this account for `audience` (the token endpoint), issued at
    /// `now` (Unix seconds) and valid for an hour.
    pub fn assertion(&self, audience: &str, now: u64) -> String {
        let mut header = serde_json::json!({ "alg": "RS256", "typ": "JWT" });
        if let Some(kid) = &self.key_id {
            header["kid"] = Value::from(kid.as_str());
        }
        let claims = serde_json::json!({
            "iss": self.email,
            "scope": SCOPE,
            "aud": audience,
            "iat": now,
            "exp": now + 3600,
        });
        let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = URL_SAFE_NO_PAD.encode(self.sign(signing_input.as_bytes()));
        format!("{signing_input}.{signature}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::RsaPublicKey;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    use rsa::signature::Verifier;

    fn key_file(key: &RsaPrivateKey) -> Credential {
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let json = serde_json::json!({
            "type": "service_account",
            "client_email": "coffer@project.iam.gserviceaccount.com",
            "private_key_id": "k1",
            "private_key": pem.as_str(),
            "token_uri": "https://oauth2.googleapis.com/token",
        });
        Credential::new(json.to_string().into_bytes())
    }

    #[test]
    fn assertion_is_a_jwt_signed_by_the_key() {
        let key = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let account = ServiceAccount::parse(&key_file(&key)).unwrap();
        let jwt = account.assertion("https://oauth2.googleapis.com/token", 1_700_000_000);
        let (signing_input, signature) = jwt.rsplit_once('.').unwrap();
        let verifier = VerifyingKey::<Sha256>::new(RsaPublicKey::from(&key));
        let signature = Signature::try_from(URL_SAFE_NO_PAD.decode(signature).unwrap().as_slice()).unwrap();
        verifier.verify(signing_input.as_bytes(), &signature).unwrap();
        let (header, claims) = signing_input.split_once('.').unwrap();
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], "k1");
        assert_eq!(claims["iss"], "coffer@project.iam.gserviceaccount.com");
        assert_eq!(claims["aud"], "https://oauth2.googleapis.com/token");
        assert_eq!(claims["scope"], SCOPE);
        assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 3600);
    }

    #[test]
    fn other_credentials_are_refused_by_name() {
        let user = Credential::new(br#"{"type":"authorized_user","client_id":"x"}"#.to_vec());
        let err = ServiceAccount::parse(&user).unwrap_err().to_string();
        assert!(err.contains("\"authorized_user\" is not supported"), "{err}");
        let garbage = Credential::new(b"AWS_ACCESS_KEY_ID=x".to_vec());
        let err = ServiceAccount::parse(&garbage).unwrap_err();
        assert!(matches!(err, Error::Unauthenticated(_)), "{err}");
        let no_key = Credential::new(br#"{"type":"service_account","client_email":"a@b"}"#.to_vec());
        let err = ServiceAccount::parse(&no_key).unwrap_err().to_string();
        assert!(err.contains("\"private_key\""), "{err}");
    }
}
