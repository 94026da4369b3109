"""Ed25519 signatures over the RFC 8785 canonical form of a JSON document.

The signed bytes are ``canonical_bytes(document without "signatures")``.
Signatures cover the parsed raw JSON, not our model of it, so a member that
this version of the tool does not know is still covered.

Signing uses pyca/cryptography (OpenSSL); *checking* uses libsodium (PyNaCl,
also from PyCA), everywhere: manifests, key files, revocations, checkpoints.
A full verify checks one signature per event, and libsodium's check takes
about 0.55 of the time of OpenSSL's on this kind of machine (104 against
186 us). libsodium is the stricter of the two: besides RFC 8032's checks it
rejects non-canonical and small-order points, which no honest signer produces
(ADR 0011). One verifier for every path, so that a document verified alone
and in a full verify gets the same verdict.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import TYPE_CHECKING, Any

from .canonical import canonical_bytes

if TYPE_CHECKING:  # (the keys are objects callers made: one-document commands load no cryptography)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


def raw_public(public: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key."""
    # (imported here: cryptography's serialization package loads its SSH and cipher modules,
    # 28-50 ms, a sixth of `verify DOC`, which reads keys from their raw bytes and needs none)
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id_of(public: Ed25519PublicKey) -> str:
    """Key id: SHA-256 of the raw public key, lowercase hex."""
    return key_id_of_raw(raw_public(public))


def key_id_of_raw(raw: bytes) -> str:
    """``key_id_of`` a public key given as its 32 raw bytes."""
    return hashlib.sha256(raw).hexdigest()


def signed_payload(document: dict[str, Any], *, plain: bool = False) -> bytes:
    """The exact bytes a signature covers (``plain``: see ``canonical.load_strict_plain``)."""
    return canonical_bytes({k: v for k, v in document.items() if k != "signatures"}, plain=plain)


def make_signature(document: dict[str, Any], private: Ed25519PrivateKey, role: str) -> dict[str, str]:
    """A signature entry for ``document``'s ``signatures`` list."""
    sig = private.sign(signed_payload(document))
    return {
        "key_id": key_id_of(private.public_key()),
        "role": role,
        "algorithm": "ed25519",
        "signature": base64.b64encode(sig).decode("ascii"),
    }


def signature_valid(payload: bytes, signature_b64: str, public: bytes) -> bool:
    """Whether ``signature_b64`` is a valid Ed25519 signature of ``payload`` by the public
    key whose 32 raw bytes are ``public``."""
    try:
        sig = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    return ed25519_valid(public, sig, payload)


def ed25519_valid(public: bytes, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` (64 raw bytes) is a valid Ed25519 signature of ``message`` by
    the public key whose 32 raw bytes are ``public`` (libsodium's ``crypto_sign_open``:
    see the module docstring; checking needs no key object, so no cryptography import)."""
    from nacl.bindings import crypto_sign_open
    from nacl.exceptions import BadSignatureError

    if len(signature) != 64:
        return False
    try:
        crypto_sign_open(signature + message, public)
    except BadSignatureError:
        return False
    return True
