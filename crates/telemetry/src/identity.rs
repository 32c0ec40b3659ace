//! Agent identity. At enrollment the agent sends the public half of the
//! Ed25519 device key it generated; afterwards every request carries
//! `Authorization: Bearer <token>`, a JWT (EdDSA, `typ`
//! `anchor-agent+jwt`, `kid` = the agent id) the agent signs itself, valid
//! for at most five minutes. The server keeps only public keys.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anchor_domain::AgentId;
use anchor_edge_protocol::{AUDIENCE, MAX_LIFETIME, TOKEN_TYPE as TYPE};
use anchor_store::{Database, StoreError, agents::Agent};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// What the server reads after validation (which checks `iss` and `aud`).
#[derive(Debug, Deserialize)]
struct Claims {
    iat: u64,
    exp: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentAuthError {
    #[error("an agent token is required")]
    Missing,
    #[error("the agent token is not valid: {0}")]
    Invalid(String),
    #[error("the agent is unknown or revoked")]
    UnknownOrRevoked,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The agent's side: a token for the next request.
pub fn sign(key: &SigningKey, agent: AgentId, lifetime: Duration) -> String {
    anchor_edge_protocol::sign_token(key, &agent.to_string(), lifetime)
}

/// The server's side: the enrolled, unrevoked agent that signed `token`.
pub async fn authenticate(db: &Database, token: &str) -> Result<Agent, AgentAuthError> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| AgentAuthError::Invalid(e.to_string()))?;
    if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(TYPE) {
        return Err(AgentAuthError::Invalid("not an agent token".into()));
    }
    let id: AgentId = header
        .kid
        .as_deref()
        .and_then(|k| k.parse().ok())
        .ok_or_else(|| AgentAuthError::Invalid("kid must name the agent".into()))?;
    let agent = db.agent(id).await?.filter(|a| a.revoked_at.is_none()).ok_or(AgentAuthError::UnknownOrRevoked)?;
    let public = anchor_crypto::multikey::public_from_multibase(&agent.public_key)
        .map_err(|e| AgentAuthError::Invalid(e.to_string()))?;
    let key = DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(public.as_bytes()))
        .map_err(|e| AgentAuthError::Invalid(e.to_string()))?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[id.to_string()]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.leeway = 30;
    let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .map_err(|e| AgentAuthError::Invalid(e.to_string()))?
        .claims;
    if claims.exp.saturating_sub(claims.iat) > MAX_LIFETIME.as_secs() || claims.iat > now() + 60 {
        return Err(AgentAuthError::Invalid("agent tokens live at most five minutes".into()));
    }
    Ok(agent)
}
