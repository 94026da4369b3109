"""Private keys, kept outside the archive in the user's config directory.

Each key is ``KEYDIR/NAME.key`` (PKCS#8 PEM, optionally encrypted with the
passphrase) and ``KEYDIR/NAME.pub.json`` (name, key id, public key: readable
without the passphrase). ``KEYDIR`` is ``$ARCHIVER_KEY_DIR`` or the
platform's user config directory + ``archiver/keys``.

Like ssh, we refuse a private key file that group or others can access at
all: a key that others could have copied proves nothing about who signed.
Nothing here ever prints or logs key material or passphrases.
"""

from __future__ import annotations

import base64
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .canonical import JSONFormatError, load_strict, pretty_bytes
from .errors import InvalidInput, KeyUnavailable
from .fsutil import atomic_write
from .signing import key_id_of, raw_public

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

PassphraseSource = Callable[[str], bytes | None]
"""Called with a key name when that key is encrypted; returns the passphrase or None."""

KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_key_name(name: str) -> str:
    """Return ``name`` if it is a valid key name.

    Raises:
        InvalidInput: it is not (1-64 of letters, digits, ``.``, ``_``, ``-``).
    """
    if not KEY_NAME.match(name):
        raise InvalidInput(f"invalid key name {name[:80]!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return name


def default_key_dir() -> Path:
    """Where private keys live."""
    env = os.environ.get("ARCHIVER_KEY_DIR")
    if env:
        return Path(env)
    import platformdirs  # imported late: only key commands need it

    return Path(platformdirs.user_config_dir("archiver")) / "keys"


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A loaded private key. ``repr`` never shows the key."""

    name: str
    key_id: str
    private: Ed25519PrivateKey

    def __repr__(self) -> str:
        return f"SigningKey(name={self.name!r}, key_id={self.key_id[:16]}...)"


@dataclass(frozen=True, slots=True)
class PublicKeyInfo:
    """What ``NAME.pub.json`` says: usable without the passphrase."""

    name: str
    key_id: str
    public_key_b64: str


class KeyStore:
    """The directory of private keys."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or default_key_dir()

    def _paths(self, name: str) -> tuple[Path, Path]:
        check_key_name(name)
        return self.directory / f"{name}.key", self.directory / f"{name}.pub.json"

    def generate(self, name: str, passphrase: bytes | None) -> SigningKey:
        """Make a new Ed25519 key and store it (0600).

        Raises:
            InvalidInput: a key of that name exists already.
            StoreError: the key could not be written.
        """
        key_path, pub_path = self._paths(name)
        if key_path.exists() or pub_path.exists():
            raise InvalidInput(f"a key named {name!r} exists already in {self.directory}")
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # (cryptography is imported where keys are made, written or read: its bindings and
        # serialization package are 35-60 ms of start-up, which commands that only check
        # signatures do without)
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        private = Ed25519PrivateKey.generate()
        from cryptography.hazmat.primitives.serialization import (
            BestAvailableEncryption,
            Encoding,
            NoEncryption,
            PrivateFormat,
        )

        enc = BestAvailableEncryption(passphrase) if passphrase else NoEncryption()
        pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, enc)
        # Created 0600 from the start: never a moment where others could read it.
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        public = private.public_key()
        info = {
            "name": name,
            "key_id": key_id_of(public),
            "public_key": base64.b64encode(raw_public(public)).decode("ascii"),
        }
        atomic_write(pub_path, pretty_bytes(info))
        return SigningKey(name=name, key_id=info["key_id"], private=private)

    def names(self) -> list[str]:
        """Names of the private keys present, sorted."""
        if not self.directory.is_dir():
            return []
        return sorted(p.name[: -len(".key")] for p in self.directory.glob("*.key"))

    def public_info(self, name: str) -> PublicKeyInfo:
        """The public half of a stored key, without decrypting it.

        Raises:
            KeyUnavailable: no such key, or its public file is damaged.
        """
        _, pub_path = self._paths(name)
        try:
            data = load_strict(pub_path.read_bytes())
            return PublicKeyInfo(
                name=str(data["name"]),
                key_id=str(data["key_id"]),
                public_key_b64=str(data["public_key"]),
            )
        except FileNotFoundError:
            raise KeyUnavailable(
                f"no key named {name!r} in {self.directory}: run `archiver keys generate {name}`"
            ) from None
        except (OSError, JSONFormatError, KeyError, TypeError) as e:
            raise KeyUnavailable(f"cannot read public key file {pub_path}: {e}") from e

    def load(self, name: str, passphrase: PassphraseSource) -> SigningKey:
        """Load a private key for signing.

        Raises:
            KeyUnavailable: missing, readable by others, encrypted without a
                passphrase available, wrong passphrase, or damaged.
        """
        key_path, _ = self._paths(name)
        try:
            fd = os.open(key_path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise KeyUnavailable(
                f"no key named {name!r} in {self.directory}: run `archiver keys generate {name}`"
            ) from None
        except OSError as e:
            raise KeyUnavailable(f"cannot open private key {key_path}: {e.strerror}") from e
        try:
            st = os.fstat(fd)
            if st.st_mode & 0o077:
                raise KeyUnavailable(
                    f"private key {key_path} is accessible by others "
                    f"(mode {stat.S_IMODE(st.st_mode):04o}); run: chmod 600 {key_path}"
                )
            if st.st_size > 64 * 1024:
                raise KeyUnavailable(f"private key {key_path} is not a key file (too large)")
            pem = os.read(fd, 64 * 1024)
        finally:
            os.close(fd)
        encrypted = b"ENCRYPTED" in pem.split(b"\n", 1)[0]
        password = None
        if encrypted:
            password = passphrase(name)
            if not password:
                raise KeyUnavailable(
                    f"key {name!r} is encrypted: set ARCHIVER_PASSPHRASE or run on a terminal"
                )
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            private = load_pem_private_key(pem, password=password)
        except ValueError:
            if encrypted:
                raise KeyUnavailable(f"wrong passphrase for key {name!r}") from None
            raise KeyUnavailable(f"private key {key_path} is damaged or not a key") from None
        except TypeError as e:
            raise KeyUnavailable(f"private key {key_path} cannot be loaded: {e}") from None
        if not isinstance(private, Ed25519PrivateKey):
            raise KeyUnavailable(f"private key {key_path} is not an Ed25519 key")
        return SigningKey(name=name, key_id=key_id_of(private.public_key()), private=private)
