"""An independent eddsa-jcs-2022 verifier (W3C Data Integrity EdDSA
Cryptosuites v1.0, section 3.3), written from the specification with
third-party primitives only: rfc8785 (JCS), base58, cryptography (Ed25519).
It shares no code with Anchor. Usage: eddsa_jcs_2022.py CREDENTIAL.json;
exit 0 and "verified" when the proof verifies with the key its did:key
names, exit 1 with the reason otherwise.
"""

import copy
import hashlib
import json
import sys

import base58
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ED25519_PUB = b"\xed\x01"


def public_key(verification_method: str) -> Ed25519PublicKey:
    did, _, fragment = verification_method.partition("#")
    if not did.startswith("did:key:z"):
        raise ValueError("not a did:key")
    multibase = did[len("did:key:"):]
    if fragment and fragment != multibase:
        raise ValueError("the fragment is not the key")
    raw = base58.b58decode(multibase[1:])
    if not raw.startswith(ED25519_PUB) or len(raw) != 34:
        raise ValueError("not an Ed25519 multikey")
    return Ed25519PublicKey.from_public_bytes(raw[2:])


def verify(secured: dict) -> str:
    document = copy.deepcopy(secured)
    proof = document.pop("proof")
    proof_value = proof.pop("proofValue")
    if proof.get("type") != "DataIntegrityProof" or proof.get("cryptosuite") != "eddsa-jcs-2022":
        raise ValueError("not an eddsa-jcs-2022 DataIntegrityProof")
    if "@context" in proof:
        ctx = document.get("@context", [])
        ctx = ctx if isinstance(ctx, list) else [ctx]
        pctx = proof["@context"] if isinstance(proof["@context"], list) else [proof["@context"]]
        if ctx[: len(pctx)] != pctx:
            raise ValueError("@context mismatch")
        document["@context"] = proof["@context"]
    hash_data = hashlib.sha256(rfc8785.dumps(proof)).digest() + hashlib.sha256(rfc8785.dumps(document)).digest()
    if not proof_value.startswith("z"):
        raise ValueError("proofValue is not base58btc")
    signature = base58.b58decode(proof_value[1:])
    key = public_key(proof["verificationMethod"])
    key.verify(signature, hash_data)  # raises InvalidSignature
    issuer = secured.get("issuer")
    issuer = issuer.get("id") if isinstance(issuer, dict) else issuer
    if issuer != proof["verificationMethod"].partition("#")[0]:
        raise ValueError("the issuer is not the signing key's DID")
    return issuer


def main() -> int:
    with open(sys.argv[1], "rb") as f:
        secured = json.load(f)
    try:
        issuer = verify(secured)
    except (ValueError, KeyError, InvalidSignature) as e:
        print(f"not verified: {type(e).__name__}: {e}")
        return 1
    print(f"verified: issued by {issuer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
