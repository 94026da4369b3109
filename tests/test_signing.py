"""The Ed25519 check (libsodium) against the signer (OpenSSL): same verdicts on
honest and tampered signatures, and stricter on the crafted ones ADR 0011 names."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from archiver.signing import ed25519_valid, raw_public, signature_valid

# the group order of Ed25519 (RFC 8032, section 5.1)
L = 2**252 + 27742317777372353535851937790883648493


@settings(max_examples=60, deadline=None)
@given(message=st.binary(max_size=3000), flip=st.integers(min_value=0, max_value=64 * 8 - 1))
def test_agrees_with_openssl_on_honest_and_flipped_signatures(message: bytes, flip: int) -> None:
    private = Ed25519PrivateKey.generate()
    public = raw_public(private.public_key())
    sig = private.sign(message)
    assert ed25519_valid(public, sig, message)
    assert signature_valid(message, base64.b64encode(sig).decode(), public)
    bad = bytearray(sig)
    bad[flip // 8] ^= 1 << (flip % 8)
    assert not ed25519_valid(public, bytes(bad), message)
    assert not ed25519_valid(public, sig, message + b"x")
    assert not ed25519_valid(raw_public(Ed25519PrivateKey.generate().public_key()), sig, message)


def test_wrong_lengths_and_bad_base64_are_invalid_not_errors() -> None:
    private = Ed25519PrivateKey.generate()
    public = raw_public(private.public_key())
    sig = private.sign(b"m")
    assert ed25519_valid(public, sig, b"m")  # (so each refusal below is the cut's doing)
    for cut in (sig[:63], sig + b"\0", b""):
        assert not ed25519_valid(public, cut, b"m")
    assert not signature_valid(b"m", "not base64!", public)
    assert not signature_valid(b"m", base64.b64encode(sig[:32]).decode(), public)


def test_non_canonical_s_is_rejected() -> None:
    # S + L verifies the same equation; RFC 8032 requires S < L, and a malleable
    # signature must not pass as a second, different signature of the same manifest
    private = Ed25519PrivateKey.generate()
    sig = private.sign(b"manifest")
    s = int.from_bytes(sig[32:], "little") + L
    assert s < 2**256
    public = raw_public(private.public_key())
    assert ed25519_valid(public, sig, b"manifest")
    assert not ed25519_valid(public, sig[:32] + s.to_bytes(32, "little"), b"manifest")


def test_small_order_key_signs_nothing() -> None:
    # The neutral point as public key, R the neutral point and S = 0: the cofactorless
    # equation [S]B = R + [k]A holds for every message. No honest key is such a point;
    # libsodium refuses it, which is why it is the one that checks (ADR 0011).
    identity = b"\x01" + bytes(31)
    forged = b"\x01" + bytes(31) + bytes(32)
    for message in (b"", b"any manifest", b"\xff" * 100):
        assert not ed25519_valid(identity, forged, message)
