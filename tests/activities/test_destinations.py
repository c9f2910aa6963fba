"""The webhook destination rule (activities/destinations.py) as pure functions: no network."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest

from activities.destinations import AllowEntry, AllowList, non_public_kind, parse_entry, refusal

NOTHING_LISTED = AllowList()


@pytest.mark.parametrize("public", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "2002:5db8:d822::1"])
def test_public_literal_passes_the_destination_check(public):
    assert non_public_kind(ip_address(public)) is None
    assert refusal(public, 443, [ip_address(public)], NOTHING_LISTED) is None


@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", "a loopback address"), ("::1", "a loopback address"), ("::ffff:127.0.0.1", "a loopback address"),
    ("169.254.169.254", "a link-local address"), ("fe80::1", "a link-local address"),
    ("10.0.0.5", "a private address"), ("172.16.3.4", "a private address"), ("192.168.1.1", "a private address"),
    ("fd12::1", "a private address"), ("::ffff:10.0.0.5", "a private address"),
    ("0.0.0.0", "an unspecified address"), ("::", "an unspecified address"),
    ("224.0.0.1", "a multicast address"), ("ff02::1", "a multicast address"),
    ("100.64.0.1", "a shared (CGNAT) address"), ("240.0.0.1", "a reserved address"),
    ("192.0.2.1", "a reserved address"), ("2001:db8::1", "a reserved address"),
    ("64:ff9b::a9fe:a9fe", "a link-local address"), ("2002:7f00:1::", "a loopback address"),
])
def test_non_public_addresses_are_named(address, kind):
    assert non_public_kind(ip_address(address)) == kind


def test_every_resolved_address_is_checked():
    addresses = [ip_address("93.184.216.34"), ip_address("10.0.0.5")]
    assert refusal("hooks.example.com", 443, addresses, NOTHING_LISTED) == (
        "webhook destination hooks.example.com (10.0.0.5) is a private address; "
        "list it in ITSM_WEBHOOK_ALLOW to allow it")
    assert refusal("hooks.example.com", 443, addresses, AllowList.parse("10.0.0.0/24")) is None


def test_a_listed_name_allows_what_it_resolves_to_case_insensitively():
    internal = [ip_address("10.1.2.3")]
    assert refusal("hooks.corp.example", 443, internal, AllowList.parse("HOOKS.Corp.Example")) is None
    assert refusal("hooks.corp.example", 443, internal, AllowList.parse("hooks.corp.example:8443")) is not None
    assert refusal("hooks.corp.example", 8443, internal, AllowList.parse("hooks.corp.example:8443")) is None
    assert refusal("other.corp.example", 443, internal, AllowList.parse("hooks.corp.example")) is not None


def test_a_wildcard_covers_names_below_the_domain_not_the_domain_itself():
    internal = [ip_address("10.1.2.3")]
    wildcard = AllowList.parse("*.corp.example")
    assert refusal("a.b.corp.example", 443, internal, wildcard) is None
    assert refusal("corp.example", 443, internal, wildcard) is not None
    assert refusal("evilcorp.example", 443, internal, wildcard) is not None


def test_an_address_entry_does_not_match_another_family():
    assert refusal("::ffff:10.0.0.5", 80, [ip_address("::ffff:10.0.0.5")], AllowList.parse("10.0.0.0/8")) is not None
    assert refusal("::1", 80, [ip_address("::1")], AllowList.parse("::1/128")) is None


def test_no_address_is_refused():
    assert refusal("hooks.example.com", 443, [], AllowList.parse("hooks.example.com")) is not None


@pytest.mark.parametrize("entry, parsed", [
    ("hooks.example.com", AllowEntry(name="hooks.example.com")),
    ("Hooks.Example.com:8443", AllowEntry(name="hooks.example.com", port=8443)),
    ("*.example.com", AllowEntry(suffix=".example.com")),
    ("10.0.0.5", AllowEntry(network=ip_network("10.0.0.5/32"))),
    ("10.0.0.5:9000", AllowEntry(network=ip_network("10.0.0.5/32"), port=9000)),
    ("10.1.0.0/16", AllowEntry(network=ip_network("10.1.0.0/16"))),
    ("::1", AllowEntry(network=ip_network("::1/128"))),
    ("::1/128", AllowEntry(network=ip_network("::1/128"))),
    ("[::1]:9000", AllowEntry(network=ip_network("::1/128"), port=9000)),
])
def test_allow_entries_parse(entry, parsed):
    assert parse_entry(entry) == parsed


def test_an_empty_or_padded_list_parses():
    assert AllowList.from_env({}) == AllowList.parse(" , ") == NOTHING_LISTED
    assert len(AllowList.from_env({"ITSM_WEBHOOK_ALLOW": " a.example , 10.0.0.0/8 ,"}).entries) == 2
