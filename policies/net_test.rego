# Tests of the network rules.
package runner_test

import data.runner
import rego.v1

conn(host, addrs) := with_action({"kind": "net.connect", "tool": "WebFetch", "host": host, "port": 443, "scheme": "https", "addresses": addrs})

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
