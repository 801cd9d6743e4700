"""Room codes a teacher reads aloud, and the teacher's secret token.

A room code is six characters from an alphabet without the look-alikes 0/O, 1/I/L, shown as
``K7M-4QX``; 31**6 (about 890 million) codes make guessing a live one unlikely, and the code only
lets someone send drawings. Everything a teacher does needs the token, a 192-bit secret
(`secrets.token_urlsafe(24)`); the database keeps only its SHA-256, so a copy of the database
gives nobody the teacher links.
"""

from __future__ import annotations

import hashlib
import re
import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 6
_NOT_CODE = re.compile(r"[\s\-_.]")


def new_code() -> str:
    """A fresh random code such as ``K7M-4QX`` (uniqueness is the database's job)."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:3]}-{raw[3:]}"


def normalize_code(text: object) -> str | None:
    """``" k7m 4qx "`` -> ``"K7M-4QX"``: case, spaces and dashes do not matter; None when it cannot be a code."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    raw = _NOT_CODE.sub("", text).upper()
    if len(raw) != CODE_LENGTH or any(c not in ALPHABET for c in raw):
        return None
    return f"{raw[:3]}-{raw[3:]}"


def new_teacher_token() -> str:
    return secrets.token_urlsafe(24)


def token_hash(token: str) -> str:
    """What the database stores and looks up instead of the token itself."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def same_hash(a: str, b: str) -> bool:
    """Constant-time comparison, so response times say nothing about how close a forged token came."""
    return secrets.compare_digest(a.encode(), b.encode())
