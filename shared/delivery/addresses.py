"""Addresses as delivery compares them: normalised, and hashed where they are kept beyond a contact."""

from __future__ import annotations

import hashlib
import re

_SPACES = re.compile(r"[\s().-]+")


def normalised(channel: str, address: str) -> str:
    """Email: the bare address SES sends to and reports back (no display name, the domain in IDNA),
    lower-cased, so ``Jane <Jane@Bücher.de>`` in a trait and ``jane@xn--bcher-kva.de`` in a bounce are one
    address; phone: E.164 digits with ``+`` (spaces, dots, dashes dropped)."""
    if channel == "sms":
        return _SPACES.sub("", address.strip())
    from shared.delivery.mime import envelope_address

    try:
        return envelope_address(address.strip()).lower()
    except ValueError:  # not sendable anyway: compared as written
        return address.strip().lower()


def address_hash(channel: str, address: str) -> str:
    """SHA-256 of the normalised address: the suppression list keeps this, never the address."""
    return hashlib.sha256(f"{channel}:{normalised(channel, address)}".encode()).hexdigest()
