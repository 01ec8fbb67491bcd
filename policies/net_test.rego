# Tests of the network rules.
package runner_test

import data.runner
import rego.v1

# The resolved phase: the runner resolved `host` to `addrs`.
conn(host, addrs) := with_action({"kind": "net.connect", "tool": "WebFetch", "host": host, "port": 443, "scheme": "https", "addresses": addrs, "resolved": true, "host_is_ip": false})

# The host phase: decided before any lookup, no addresses yet.
host_phase(host) := with_action({"kind": "net.connect", "tool": "WebFetch", "host": host, "port": 443, "scheme": "https", "addresses": [], "resolved": false, "host_is_ip": false})

# An IP literal: its address is in `addresses` in both phases.
literal(ip, resolved) := with_action({"kind": "net.connect", "tool": "WebFetch", "host": ip, "port": 443, "scheme": "https", "addresses": [ip], "resolved": resolved, "host_is_ip": true})

allow_hosts(i, hosts) := object.union(i, {"trusted": {"worker": {"network": {"allow_hosts": hosts}}}})

test_net_denied_without_allowlist if {
	d := runner.decision with input as conn("example.com", ["93.184.216.34"])
	d.result == "deny"
	some r in d.reasons
	contains(r, "not on the network allowlist")
}

test_net_allowlisted_host_allowed if {
	runner.decision.result == "allow" with input as allow_hosts(conn("example.com", ["93.184.216.34"]), ["example.com"])
}

test_net_agent_grant_allows if {
	i := object.union(conn("pypi.org", ["151.101.0.223"]), {"trusted": {"agent": {"grants": {"network": {"allow_hosts": ["pypi.org"]}}}}})
	runner.decision.result == "allow" with input as i
}

test_net_wildcard_matches_subdomains_only if {
	runner.decision.result == "allow" with input as allow_hosts(conn("api.github.com", ["140.82.112.6"]), ["*.github.com"])
	runner.decision.result == "deny" with input as allow_hosts(conn("github.com", ["140.82.112.3"]), ["*.github.com"])
	runner.decision.result == "deny" with input as allow_hosts(conn("evilgithub.com", ["1.2.3.4"]), ["*.github.com"])
}

test_net_deny_entry_wins if {
	i := object.union(conn("bad.example.com", ["93.184.216.35"]), {"trusted": {"worker": {"network": {"allow_hosts": ["*.example.com"], "deny_hosts": ["bad.example.com"]}}}})
	runner.decision.result == "deny" with input as i
}

test_net_name_resolving_to_loopback_denied if {
	d := runner.decision with input as allow_hosts(conn("localtest.me", ["127.0.0.1"]), ["localtest.me"])
	d.result == "deny"
	some r in d.reasons
	contains(r, "loopback, private, link-local or metadata")
}

test_net_any_bad_address_denies if {
	runner.decision.result == "deny" with input as allow_hosts(conn("split.example", ["93.184.216.34", "10.0.0.5"]), ["split.example"])
}

test_net_private_and_link_local_denied if {
	every a in ["10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.100.100.200", "0.0.0.0", "::1", "fd00:ec2::254", "fe80::1"] {
		runner.decision.result == "deny" with input as allow_hosts(conn("h.example", [a]), ["h.example"])
	}
}

test_net_metadata_host_denied if {
	runner.decision.result == "deny" with input as allow_hosts(conn("metadata.google.internal", ["203.0.113.9"]), ["metadata.google.internal"])
}

test_net_unresolved_denied if {
	runner.decision.result == "deny" with input as allow_hosts(conn("example.com", []), ["example.com"])
}

test_net_public_ipv6_allowed if {
	runner.decision.result == "allow" with input as allow_hosts(conn("v6.example", ["2606:2800:220:1::1"]), ["v6.example"])
}

test_net_allow_cidrs_exempt_loopback if {
	i := object.union(conn("127.0.0.1", ["127.0.0.1"]), {"trusted": {"worker": {"network": {"allow_hosts": ["127.0.0.1"], "allow_cidrs": ["127.0.0.1/32"]}}}})
	runner.decision.result == "allow" with input as i
}

test_net_allow_cidrs_exempt_only_their_range if {
	i := object.union(conn("127.0.0.2", ["127.0.0.2"]), {"trusted": {"worker": {"network": {"allow_hosts": ["127.0.0.2"], "allow_cidrs": ["127.0.0.1/32"]}}}})
	runner.decision.result == "deny" with input as i
}

test_net_host_phase_not_allowlisted_denied if {
	d := runner.decision with input as host_phase("example.com")
	d.result == "deny"
	some r in d.reasons
	contains(r, "not on the network allowlist")
}

test_net_host_phase_allowlisted_allowed if {
	runner.decision.result == "allow" with input as allow_hosts(host_phase("example.com"), ["example.com"])
	runner.decision.result == "allow" with input as allow_hosts(host_phase("api.github.com"), ["*.github.com"])
}

# Absent `resolved` is the host phase: it allows no more than the host rules.
test_net_resolved_absent_is_the_host_phase if {
	i := json.remove(allow_hosts(host_phase("example.com"), ["example.com"]), ["action/resolved", "action/addresses", "action/host_is_ip"])
	runner.decision.result == "allow" with input as i
	runner.decision.result == "deny" with input as json.remove(host_phase("example.com"), ["action/resolved"])
}

# Only `resolved: true` is the resolved phase; anything else is the host
# phase (which never allows more than the host rules).
test_net_resolved_counts_only_when_true if {
	i := allow_hosts(object.union(host_phase("example.com"), {"action": {"resolved": "yes"}}), ["example.com"])
	runner.decision.result == "allow" with input as i
	j := allow_hosts(object.union(conn("example.com", []), {"action": {"resolved": "yes"}}), ["example.com"])
	runner.decision.result == "allow" with input as j
}

# Allowed on the host, then denied once it resolves to a blocked address.
test_net_allowlisted_host_denied_when_it_resolves_to_a_blocked_address if {
	every a in ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::1"] {
		runner.decision.result == "allow" with input as allow_hosts(host_phase("h.example"), ["h.example"])
		d := runner.decision with input as allow_hosts(conn("h.example", [a]), ["h.example"])
		d.result == "deny"
		some r in d.reasons
		contains(r, sprintf("resolves to %v, a loopback", [a]))
	}
}

test_net_ip_literal_in_a_blocked_range_denied_in_the_host_phase if {
	every ip in ["169.254.169.254", "10.0.0.1", "127.0.0.1", "192.168.1.1", "fe80::1"] {
		d := runner.decision with input as allow_hosts(literal(ip, false), [ip])
		d.result == "deny"
		some r in d.reasons
		contains(r, "loopback, private, link-local or metadata")
	}
}

test_net_public_ip_literal_allowed_in_both_phases if {
	runner.decision.result == "allow" with input as allow_hosts(literal("93.184.216.34", false), ["93.184.216.34"])
	runner.decision.result == "allow" with input as allow_hosts(literal("93.184.216.34", true), ["93.184.216.34"])
}

test_net_ip_literal_without_its_address_denied if {
	i := allow_hosts(object.union(literal("93.184.216.34", false), {"action": {"addresses": []}}), ["93.184.216.34"])
	d := runner.decision with input as i
	d.result == "deny"
	some r in d.reasons
	contains(r, "carries no address")
}

test_net_allow_cidrs_exempt_an_ip_literal_in_the_host_phase if {
	i := object.union(literal("127.0.0.1", false), {"trusted": {"worker": {"network": {"allow_hosts": ["127.0.0.1"], "allow_cidrs": ["127.0.0.1/32"]}}}})
	runner.decision.result == "allow" with input as i
}

# The host rules decide already in the host phase, before any lookup.
test_net_host_phase_deny_list_and_metadata_names_denied if {
	i := object.union(host_phase("bad.example.com"), {"trusted": {"worker": {"network": {"allow_hosts": ["*.example.com"], "deny_hosts": ["bad.example.com"]}}}})
	runner.decision.result == "deny" with input as i
	runner.decision.result == "deny" with input as allow_hosts(host_phase("metadata.google.internal"), ["metadata.google.internal"])
}

# Any address the host phase carries is checked too (it never allows more
# than the host rules).
test_net_host_phase_addresses_are_checked if {
	i := allow_hosts(object.union(host_phase("h.example"), {"action": {"addresses": ["10.0.0.1"]}}), ["h.example"])
	runner.decision.result == "deny" with input as i
}

# Missing or mistyped fields deny under every engine (decision.rego says why).
test_net_addresses_not_a_list_denied if {
	every v in ["127.0.0.1", {"a": "127.0.0.1"}, null] {
		i := allow_hosts(object.union(conn("h.example", []), {"action": {"addresses": v}}), ["h.example"])
		runner.decision.result == "deny" with input as i
	}
}

test_net_missing_addresses_in_the_resolved_phase_denied if {
	i := json.remove(allow_hosts(conn("h.example", []), ["h.example"]), ["action/addresses"])
	d := runner.decision with input as i
	d.result == "deny"
	some r in d.reasons
	contains(r, "was not resolved")
}

test_net_address_that_is_not_an_ip_denied if {
	every a in ["localhost", "10.0.0.0/8", "", "1.2.3", 7, null] {
		d := runner.decision with input as allow_hosts(conn("h.example", ["93.184.216.34", a]), ["h.example"])
		d.result == "deny"
		some r in d.reasons
		contains(r, "not an IP address")
	}
}

test_net_missing_host_denied if {
	every phase in [host_phase("x"), conn("x", ["93.184.216.34"])] {
		i := allow_hosts(json.remove(phase, ["action/host"]), ["", "*"])
		d := runner.decision with input as i
		d.result == "deny"
		some r in d.reasons
		r == "the connection names no host"
	}
}

test_net_malformed_deny_lists_deny if {
	every v in ["h.example", {"h.example": true}] {
		i := object.union(allow_hosts(conn("h.example", ["93.184.216.34"]), ["h.example"]), {"trusted": {"worker": {"network": {"deny_hosts": v}}}})
		d := runner.decision with input as i
		d.result == "deny"
		some r in d.reasons
		contains(r, "trusted.worker.network.deny_hosts is not a list")
		j := grant(allow_hosts(conn("h.example", ["93.184.216.34"]), ["h.example"]), {"network": {"deny_hosts": v}})
		e := runner.decision with input as j
		e.result == "deny"
		some s in e.reasons
		contains(s, "trusted.agent.grants.network.deny_hosts is not a list")
	}
	# An entry that is not a string is skipped; the others still apply.
	k := object.union(allow_hosts(conn("h.example", ["93.184.216.34"]), ["h.example"]), {"trusted": {"worker": {"network": {"deny_hosts": [1, "h.example"]}}}})
	runner.decision.result == "deny" with input as k
}
# A malformed allow list allows less, never more.
test_net_malformed_allow_lists_allow_nothing_they_hold if {
	i := allow_hosts(conn("h.example", ["93.184.216.34"]), "h.example")
	runner.decision.result == "deny" with input as i
	j := allow_hosts(conn("h.example", ["93.184.216.34"]), [1, "h.example"])
	runner.decision.result == "allow" with input as j
	k := object.union(conn("127.0.0.1", ["127.0.0.1"]), {"trusted": {"worker": {"network": {"allow_hosts": ["127.0.0.1"], "allow_cidrs": "127.0.0.1/32"}}}})
	runner.decision.result == "deny" with input as k
}

test_net_invalid_allow_cidr_exempts_nothing if {
	i := object.union(conn("127.0.0.1", ["127.0.0.1"]), {"trusted": {"worker": {"network": {"allow_hosts": ["127.0.0.1"], "allow_cidrs": ["127.0.0.1/33", "localhost"]}}}})
	runner.decision.result == "deny" with input as i
}

test_net_ipv4_mapped_address_denied if {
	every a in ["::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:93.184.216.34"] {
		runner.decision.result == "deny" with input as allow_hosts(conn("h.example", [a]), ["h.example"])
	}
}

# Ranges that embed or reach an address the guard would not see as such
# (IPv4-compatible, NAT64, 6to4), or are not globally routed (site-local,
# discard): denied like a private address; a public IPv6 one next to them
# still passes (test_net_public_ipv6_allowed).
test_net_ipv6_embedding_and_unrouted_ranges_denied if {
	every a in ["::7f00:1", "::a00:5", "64:ff9b::7f00:1", "64:ff9b:1::a00:1", "2002:7f00:1::1", "2002:a9fe:a9fe::1", "fec0::1", "100::1"] {
		runner.decision.result == "deny" with input as allow_hosts(conn("h.example", [a]), ["h.example"])
	}
}

test_net_ipv6_neighbours_of_the_new_ranges_allowed if {
	every a in ["64:ff9c::1", "2003::1", "2001:db9::1"] {
		runner.decision.result == "allow" with input as allow_hosts(conn("h.example", [a]), ["h.example"])
	}
}
