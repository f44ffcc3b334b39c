"""The installation's Ed25519 key, which signs the head of every audit export."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from governance.errors import GovernError
from governance.private import private_dir


def load_key(path: Path) -> Ed25519PrivateKey:
    """The installation key at `path`; GovernError when it is missing or unreadable (never a new one)."""
    path = Path(path)
    if not path.is_file():
        raise GovernError(f"the installation's signing key {path} is missing: restore it from your backup (or set "
                          "GOVERN_KEY_FILE to where it lives); without it the log cannot be signed or witnessed.")
    return _read(path)


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """Load the installation key from `path`, creating it (mode 0600, folder 0700) on first use."""
    path = Path(path)
    if not path.exists():
        private_dir(path.parent)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            # O_EXCL: if two processes race to create the key, exactly one wins and both use it.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
        except FileExistsError:
            pass
    return _read(path)


def _read(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise GovernError(f"the signing key {path} cannot be read as an Ed25519 private key ({exc}).") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise GovernError(f"the signing key {path} is not an Ed25519 key.")
    return key


def public_key_hex(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    return key.sign(message).hex()


def is_public_key(text: object) -> bool:
    """64 hex digits: the form `govern audit key` prints."""
    if not isinstance(text, str) or len(text) != 64:
        return False
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def signature_valid(public_hex: str, message: bytes, signature_hex: str) -> bool:
    if not isinstance(public_hex, str) or not isinstance(signature_hex, str):
        return False
    try:
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
        public.verify(bytes.fromhex(signature_hex), message)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
