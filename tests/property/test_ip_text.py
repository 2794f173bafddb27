"""`ip_text` spells every address exactly as `str()` does (it replaces `str()` where flow
rows and watch events are written)."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from ppsguard.model.net import ip_text


@given(st.ip_addresses())
def test_ip_text_is_str(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    assert ip_text(address) == str(address)


def test_ip_text_edges() -> None:
    for text in ("0.0.0.0", "255.255.255.255", "198.18.0.1", "2001:db8::1", "::ffff:198.18.0.1"):
        address = ipaddress.ip_address(text)
        assert ip_text(address) == str(address)
