//! Command envelopes: the gateway's signature over exactly what a skill may
//! do. An envelope is a compact JWS (EdDSA, Ed25519) whose claims bind the
//! execution id (`jti`), the workspace (`ws`), the actor (`act`), the command
//! (`cmd`) and the SHA-256 of the canonical JSON (RFC 8785) of its arguments
//! (`dig`). The agent node acts only when the signature verifies with the
//! gateway's key and every bound value equals the input it received, so a
//! control plane (or anyone between) that forges or alters a command achieves
//! nothing. Replaying a genuine envelope is harmless: skills act once per
//! execution id.

use std::{
    path::Path,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anchor_domain::ExecutionId;
use anchor_store::executions::Actor;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{SigningKey, VerifyingKey, pkcs8::EncodePrivateKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::command::CommandInput;

/// `iss` of every envelope.
pub const ISSUER: &str = "urn:anchor:gateway";
/// `aud` of every envelope.
pub const AUDIENCE: &str = "urn:anchor:agent-node";
/// JWS `typ`, so an envelope is never mistaken for another kind of token.
pub const TYPE: &str = "anchor-command+jwt";
/// A command not performed within this long after it was accepted is refused
/// (it stays visible as a failed execution). AgentField may be down for a
/// while; a week covers any outage the outbox rides out.
pub const LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// The key file in the data directory.
pub const KEY_FILE: &str = "command-signer.p8";
/// Its public half (an Ed25519 Multikey, `z6Mk...`), published beside it
/// for agent nodes on the same host.
pub const PUBLIC_KEY_FILE: &str = "command-signer.pub";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    jti: String,
    ws: String,
    act: Actor,
    cmd: String,
    dig: String,
    iat: u64,
    exp: u64,
}

/// Why an agent node cannot know whose commands to trust.
#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    #[error("no command key to trust: set command_keys (ANCHOR_COMMAND_KEYS) to the gateway's key, found in its {0}")]
    NoKeys(String),
    #[error("{0}: not a list of Ed25519 Multikeys ({1})")]
    Invalid(String, String),
    #[error(transparent)]
    Key(#[from] anchor_crypto::keys::KeyError),
}

/// Why an envelope was refused. The node answers with the code; the message
/// is for operators.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the command carries no envelope")]
    Missing,
    #[error("the envelope is not signed by a key this node trusts: {0}")]
    Signature(String),
    #[error("the envelope has expired")]
    Expired,
    #[error("the envelope does not match the command's {0}")]
    Mismatch(&'static str),
    #[error("cannot sign the envelope: {0}")]
    Sign(String),
}

impl EnvelopeError {
    /// A stable code for problem documents and execution errors.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "command_envelope_missing",
            Self::Signature(_) => "command_envelope_invalid",
            Self::Expired => "command_envelope_expired",
            Self::Mismatch(_) => "command_envelope_mismatch",
            Self::Sign(_) => "command_envelope_unsignable",
        }
    }
}

/// RFC 7638 thumbprint of an Ed25519 public key (the `kid`).
fn thumbprint(key: &VerifyingKey) -> String {
    let x = URL_SAFE_NO_PAD.encode(key.as_bytes());
    URL_SAFE_NO_PAD.encode(Sha256::digest(format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#)))
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The gateway's signing half.
pub struct CommandSigner {
    encoding: EncodingKey,
    verifying: VerifyingKey,
    kid: String,
}

impl std::fmt::Debug for CommandSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandSigner").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl CommandSigner {
    /// The installation's key, `<data_dir>/keys/command-signer.p8`, created
    /// on first use; its public half is published as `command-signer.pub`.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, anchor_crypto::keys::KeyError> {
        let signer = Self::new(&anchor_crypto::keys::ed25519(data_dir, KEY_FILE)?);
        anchor_crypto::keys::publish(data_dir, PUBLIC_KEY_FILE, &signer.public_multikey())?;
        Ok(signer)
    }

    /// The public key as an Ed25519 Multikey (`z6Mk...`), the form
    /// `command_keys` takes.
    pub fn public_multikey(&self) -> String {
        anchor_crypto::multikey::public_multibase(&self.verifying)
    }

    pub fn new(key: &SigningKey) -> Self {
        let der = key.to_pkcs8_der().expect("an Ed25519 key encodes");
        let verifying = key.verifying_key();
        Self { encoding: EncodingKey::from_ed_der(der.as_bytes()), kid: thumbprint(&verifying), verifying }
    }

    /// The public key that verifies this signer's envelopes.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.verifying
    }

    pub fn verifier(&self) -> CommandVerifier {
        CommandVerifier::new(&[self.verifying])
    }

    /// Signs the envelope of one execution.
    pub fn sign(
        &self,
        execution: ExecutionId,
        workspace: &str,
        actor: &Actor,
        command: &str,
        args: &Value,
    ) -> Result<String, EnvelopeError> {
        let iat = now();
        let claims = Claims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            jti: execution.to_string(),
            ws: workspace.to_owned(),
            act: actor.clone(),
            cmd: command.to_owned(),
            dig: anchor_crypto::canonical::digest(args).map_err(|e| EnvelopeError::Sign(e.to_string()))?,
            iat,
            exp: iat + LIFETIME.as_secs(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(TYPE.to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).map_err(|e| EnvelopeError::Sign(e.to_string()))
    }
}

/// The agent node's verifying half: the gateway keys it trusts (more than one
/// while a key is being rotated).
#[derive(Clone)]
pub struct CommandVerifier {
    keys: Vec<(String, DecodingKey)>,
}

impl std::fmt::Debug for CommandVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandVerifier").field("kids", &self.keys.iter().map(|(k, _)| k).collect::<Vec<_>>()).finish()
    }
}

impl CommandVerifier {
    pub fn new(keys: &[VerifyingKey]) -> Self {
        let keys = keys
            .iter()
            .map(|key| {
                let x = URL_SAFE_NO_PAD.encode(key.as_bytes());
                (thumbprint(key), DecodingKey::from_ed_components(&x).expect("a valid Ed25519 key"))
            })
            .collect();
        Self { keys }
    }

    /// Trusts the `configured` keys (comma-separated Multikeys), or else the
    /// public key the gateway published in the data directory. Never reads
    /// or creates a private key: a node that trusts nothing refuses to start.
    pub fn load(data_dir: &Path, configured: Option<&str>) -> Result<Self, VerifierError> {
        let (listed, source) = match configured.filter(|c| !c.trim().is_empty()) {
            Some(listed) => (listed.to_owned(), "command_keys".to_owned()),
            None => {
                let file = anchor_crypto::keys::path(data_dir, PUBLIC_KEY_FILE).display().to_string();
                match anchor_crypto::keys::published(data_dir, PUBLIC_KEY_FILE)? {
                    Some(listed) => (listed, file),
                    None => return Err(VerifierError::NoKeys(file)),
                }
            }
        };
        let keys = listed
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|k| {
                anchor_crypto::multikey::public_from_multibase(k)
                    .map_err(|e| VerifierError::Invalid(source.clone(), format!("{k}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(VerifierError::Invalid(source, "no key listed".into()));
        }
        Ok(Self::new(&keys))
    }

    /// Checks that `input` is exactly what the gateway signed.
    pub fn verify(&self, input: &CommandInput) -> Result<(), EnvelopeError> {
        if input.envelope.is_empty() {
            return Err(EnvelopeError::Missing);
        }
        let header =
            jsonwebtoken::decode_header(&input.envelope).map_err(|e| EnvelopeError::Signature(e.to_string()))?;
        if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(TYPE) {
            return Err(EnvelopeError::Signature("not an EdDSA command envelope".into()));
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.iter().find(|(k, _)| k == kid))
            .map(|(_, key)| key)
            .ok_or_else(|| EnvelopeError::Signature("unknown key id".into()))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = match jsonwebtoken::decode::<Claims>(&input.envelope, key, &validation) {
            Ok(data) => data.claims,
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
                return Err(EnvelopeError::Expired);
            }
            Err(e) => return Err(EnvelopeError::Signature(e.to_string())),
        };
        let digest = anchor_crypto::canonical::digest(&input.args).map_err(|_| EnvelopeError::Mismatch("arguments"))?;
        let checks = [
            (claims.jti == input.execution_id.to_string(), "execution id"),
            (claims.ws == input.workspace, "workspace"),
            (claims.act == input.actor, "actor"),
            (claims.cmd == input.command, "command"),
            (claims.dig == digest, "arguments"),
        ];
        match checks.into_iter().find(|(ok, _)| !ok) {
            Some((_, what)) => Err(EnvelopeError::Mismatch(what)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn signer(seed: u8) -> CommandSigner {
        CommandSigner::new(&SigningKey::from_bytes(&[seed; 32]))
    }

    fn input(signer: &CommandSigner) -> CommandInput {
        let execution_id = ExecutionId::new();
        let actor = Actor { issuer: "urn:anchor:dev-issuer".into(), subject: "alice".into() };
        let args = json!({"title": "Printer offline", "priority": "p2"});
        let envelope = signer.sign(execution_id, "acme", &actor, "ticket.create", &args).expect("sign");
        CommandInput { execution_id, workspace: "acme".into(), actor, command: "ticket.create".into(), args, envelope }
    }

    #[test]
    fn a_genuine_envelope_verifies() {
        let signer = signer(1);
        signer.verifier().verify(&input(&signer)).expect("genuine");
        // Argument member order is not part of the meaning.
        let mut reordered = input(&signer);
        reordered.args = serde_json::from_str(r#"{"priority":"p2","title":"Printer offline"}"#).expect("json");
        let original = input(&signer);
        reordered.envelope = original.envelope.clone();
        reordered.execution_id = original.execution_id;
        signer.verifier().verify(&reordered).expect("same arguments");
    }

    #[test]
    fn every_altered_field_is_refused() {
        let signer = signer(1);
        let verifier = signer.verifier();
        let genuine = input(&signer);
        type Alteration = fn(&mut CommandInput);
        let alterations: [(&str, Alteration); 5] = [
            ("execution id", |i| i.execution_id = ExecutionId::new()),
            ("workspace", |i| i.workspace = "globex".into()),
            ("actor", |i| i.actor.subject = "mallory".into()),
            ("command", |i| i.command = "ticket.transition".into()),
            ("arguments", |i| i.args["priority"] = json!("p1")),
        ];
        for (what, alter) in alterations {
            let mut forged = genuine.clone();
            alter(&mut forged);
            assert_eq!(verifier.verify(&forged), Err(EnvelopeError::Mismatch(what)), "{what}");
        }
    }

    #[test]
    fn a_node_trusts_configured_or_published_public_keys_and_never_makes_one() {
        let dir = tempfile::tempdir().expect("dir");
        let err = CommandVerifier::load(dir.path(), None).expect_err("nothing to trust");
        assert!(matches!(err, VerifierError::NoKeys(_)), "{err}");
        assert!(!anchor_crypto::keys::path(dir.path(), KEY_FILE).exists(), "no private key was created");

        let gateway = signer(1);
        let configured = format!("{}, {}", signer(3).public_multikey(), gateway.public_multikey());
        CommandVerifier::load(dir.path(), Some(&configured)).expect("configured").verify(&input(&gateway)).expect("ok");
        let err = CommandVerifier::load(dir.path(), Some("z6MkNotAKey")).expect_err("bad key");
        assert!(matches!(err, VerifierError::Invalid(..)), "{err}");

        // The gateway on the same host publishes its public half.
        let created = CommandSigner::load_or_create(dir.path()).expect("gateway key");
        let verifier = CommandVerifier::load(dir.path(), None).expect("published");
        verifier.verify(&input(&created)).expect("the published key verifies the gateway's envelopes");
        assert!(verifier.verify(&input(&gateway)).is_err(), "and only those");
    }

    #[test]
    fn another_key_or_no_envelope_is_refused() {
        let forger = signer(2);
        let forged = input(&forger);
        let err = signer(1).verifier().verify(&forged).expect_err("forged");
        assert_eq!(err.code(), "command_envelope_invalid", "{err}");
        let mut missing = input(&signer(1));
        missing.envelope.clear();
        assert_eq!(signer(1).verifier().verify(&missing), Err(EnvelopeError::Missing));
        // A tampered payload breaks the signature.
        let mut tampered = input(&signer(1));
        let parts: Vec<&str> = tampered.envelope.split('.').collect();
        let claims = URL_SAFE_NO_PAD.decode(parts[1]).expect("b64");
        let claims = String::from_utf8(claims).expect("utf8").replace("alice", "mallo");
        tampered.envelope = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims), parts[2]);
        tampered.actor.subject = "mallo".into();
        assert_eq!(signer(1).verifier().verify(&tampered).expect_err("tampered").code(), "command_envelope_invalid");
    }
}
