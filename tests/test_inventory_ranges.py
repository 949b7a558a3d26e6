"""Host ranges and ports in inventory host names (fleetmon.inventory.ranges)."""

from __future__ import annotations

import pytest

from fleetmon.inventory.ranges import RangeError, expand_host_pattern, expand_range, split_port


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("kvm01", ["kvm01"]),
        ("web[1:3]", ["web1", "web2", "web3"]),
        ("web[01:03]", ["web01", "web02", "web03"]),
        ("web[08:11]", ["web08", "web09", "web10", "web11"]),
        ("web[01:20:5]", ["web01", "web06", "web11", "web16"]),
        ("web[:2]", ["web0", "web1", "web2"]),  # Ansible: an empty begin is 0
        ("db-[a:c].lan", ["db-a.lan", "db-b.lan", "db-c.lan"]),
        ("x[a:f:2]", ["xa", "xc", "xe"]),
        ("x[y:B]", ["xy", "xz", "xA", "xB"]),  # Ansible's alphabet runs a-z then A-Z
        ("r[1:2]n[a:b]", ["r1na", "r1nb", "r2na", "r2nb"]),  # first range outermost
        ("[1:2].example", ["1.example", "2.example"]),
        ("192.0.2.[1:3]", ["192.0.2.1", "192.0.2.2", "192.0.2.3"]),
        ("web[7:7]", ["web7"]),
    ],
)
def test_expand_range(pattern: str, expected: list[str]) -> None:
    assert expand_range(pattern) == expected


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("web[01:100]", "range [01:100] must have equal-length begin and end"),
        ("web[1:z]", "range [1:z] bounds must be integers or single letters"),
        ("web[ab:cd]", "range [ab:cd] bounds must be integers or single letters"),
        ("web[9:1]", "range [9:1] is empty"),
        ("web[z:a]", "range [z:a] has begin after end"),
        ("web[1:9:0]", "range step must be at least 1, got 0"),
        ("web[1:9:x]", "range step 'x' is not an integer"),
        ("web[1]", "range [1] must be [begin:end] or [begin:end:step]"),
        ("web[1:2:3:4]", "range [1:2:3:4] must be [begin:end] or [begin:end:step]"),
        ("web[1:]", "range [1:] has no end"),
        ("web[1:3", "unbalanced '[' in 'web[1:3'"),
        ("web1:3]", "unbalanced ']' in 'web1:3]'"),
        (
            "web[1:1000000000]",
            "'web[1:1000000000]' expands to 1,000,000,000 hosts, more than the 100,000 an "
            "inventory may have (FLEETMON_MAX_HOSTS sets another limit)",
        ),
        (
            "w[1:400]x[1:400]",
            "'w[1:400]x[1:400]' expands to 160,000 hosts, more than the 100,000 an inventory may "
            "have (FLEETMON_MAX_HOSTS sets another limit)",
        ),
        ("w[1:" + "9" * 40 + "]", "range [1:" + "9" * 40 + "] bounds have more than 30 digits"),
        ("a]b[1:2]", "unbalanced ']' in 'a]b[1:2]'"),
    ],
)
def test_bad_range(pattern: str, message: str) -> None:
    with pytest.raises(RangeError) as e:
        expand_range(pattern)
    assert str(e.value) == message


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("kvm01", ("kvm01", None)),
        ("kvm01:2222", ("kvm01", 2222)),
        ("192.0.2.7:22", ("192.0.2.7", 22)),
        ("web[01:03]:2200", ("web[01:03]", 2200)),
        ("web[01:03]", ("web[01:03]", None)),
        ("2001:db8::7", ("2001:db8::7", None)),  # bare IPv6: no port
        ("[2001:db8::7]:2222", ("2001:db8::7", 2222)),
        ("[::1]", ("::1", None)),
        ("[1:9:2]", ("[1:9:2]", None)),  # a stepped range, not an IPv6 address
    ],
)
def test_split_port(pattern: str, expected: tuple[str, int | None]) -> None:
    assert split_port(pattern) == expected


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("kvm01:", "host 'kvm01:' ends in ':' (reserved for a port number)"),
        ("kvm01:0", "port 0 is not in 1-65535"),
        ("kvm01:65536", "port 65536 is not in 1-65535"),
        ("  ", "empty host name"),
    ],
)
def test_bad_host_pattern(pattern: str, message: str) -> None:
    with pytest.raises(RangeError) as e:
        expand_host_pattern(pattern)
    assert str(e.value) == message


def test_host_pattern_with_range_and_port() -> None:
    assert expand_host_pattern("web[1:2]:2200") == (["web1", "web2"], 2200)
