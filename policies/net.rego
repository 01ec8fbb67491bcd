# Network: only hosts on the trusted allowlists (worker config and the
# pinned agent's grants); deny entries win; and never a loopback, private,
# link-local, multicast or cloud-metadata address, whatever name resolved to
# it. Ranges in the worker's `allow_cidrs` are exempt from the address guard
# (test rigs, on-premise services).
#
# A connection is decided twice. First on the host alone (`resolved`
# false or absent), before the runner resolves the name, so a host these
# rules refuse never reaches DNS (a lookup is itself a message out): the
# allowlist, the deny lists and the metadata names decide, and an IP
# literal's address (the runner passes it in `addresses` in both phases,
# with `host_is_ip`) is checked already. Then, only if that was allowed,
# with `resolved: true` and every address the name resolved to in
# `addresses`: every rule applies again, and no address may be missing or
# in a blocked range. Every address an action carries is checked, in
# either phase, so the host phase never allows more than the host rules.
package runner

import rego.v1

blocked_v4 := [
	"0.0.0.0/8",
	"10.0.0.0/8",
	"100.64.0.0/10",
	"127.0.0.0/8",
	"169.254.0.0/16",
	"172.16.0.0/12",
	"192.0.0.0/24",
	"192.168.0.0/16",
	"198.18.0.0/15",
	"224.0.0.0/4",
	"240.0.0.0/4",
]

# `::ffff:0:0/96`: an IPv4-mapped address the runner did not unwrap (it
# does, so a mapped address is never checked against the IPv4 ranges).
#
# The others embed or reach an address the guard cannot see as such, or
# are not globally routed: `::/96` (IPv4-compatible, deprecated: `::a.b.c.d`
# can reach an IPv4 host, 127.0.0.1 among them), `64:ff9b::/96` and
# `64:ff9b:1::/48` (NAT64: a gateway turns them into the IPv4 address they
# embed, private ones too), `2002::/16` (6to4: the same through a relay),
# `fec0::/10` (deprecated site-local, still routed inside some networks),
# `100::/64` (discard-only). A deployment that needs one adds it to
# `network.allow_cidrs`.
blocked_v6 := [
	"::/128",
	"::1/128",
	"::/96",
	"::ffff:0:0/96",
	"64:ff9b::/96",
	"64:ff9b:1::/48",
	"100::/64",
	"2002::/16",
	"fc00::/7",
	"fe80::/10",
	"fec0::/10",
	"ff00::/8",
]

metadata_hosts := {"metadata.google.internal", "metadata.goog", "metadata", "instance-data"}

worker_network := n if {
	n := worker.network
	is_object(n)
} else := {}

grant_network := n if {
	n := grants.network
	is_object(n)
} else := {}

# Each list read as a list (a malformed one denies, decision.rego); entries
# that are not strings are skipped where a builtin reads them.
worker_allow_hosts := v if {
	v := worker_network.allow_hosts
	is_array(v)
} else := []

grant_allow_hosts := v if {
	v := grant_network.allow_hosts
	is_array(v)
} else := []

worker_deny_hosts := v if {
	v := worker_network.deny_hosts
	is_array(v)
} else := []

grant_deny_hosts := v if {
	v := grant_network.deny_hosts
	is_array(v)
} else := []

granted_hosts := array.concat(worker_allow_hosts, grant_allow_hosts)

denied_hosts := array.concat(worker_deny_hosts, grant_deny_hosts)

exempt_cidrs := v if {
	v := worker_network.allow_cidrs
	is_array(v)
} else := []

# The deny lists and the sections holding them: malformed, they deny
# (decision.rego). A malformed allow list or `allow_cidrs` needs no check:
# read as empty, or without its entries that are not strings, it only
# allows less.
net_settings := [
	[["trusted", "worker"], "object", {}],
	[["trusted", "worker", "network"], "object", {}],
	[["trusted", "worker", "network", "deny_hosts"], "array", []],
	[["trusted", "agent", "grants"], "object", {}],
	[["trusted", "agent", "grants", "network"], "object", {}],
	[["trusted", "agent", "grants", "network", "deny_hosts"], "array", []],
]

# The action's host and addresses, read with defaults (decision.rego says
# why); `resolved` and `host_is_ip` count only when they are `true`. Both
# are defined for net.connect only, so no network rule fires for an action
# of another kind (not even in `policy eval --explain`).
host := h if {
	kind == "net.connect"
	h := input.action.host
	is_string(h)
} else := "" if {
	kind == "net.connect"
}

addresses := a if {
	kind == "net.connect"
	a := input.action.addresses
	is_array(a)
} else := [] if {
	kind == "net.connect"
}

host_matches(pattern, name) if pattern == name

host_matches(pattern, name) if {
	startswith(pattern, "*.")
	endswith(name, substring(pattern, 1, -1))
}

default host_allowed := false

# The runner's own connections to a repository host it is configured for
# (its git transfers and the forge's API); every address rule still applies.
host_allowed if {
	tool == "runner"
	host in repository_hosts
}

host_allowed if {
	tool == "runner"
	host in repository_api_hosts
}

repository_api_hosts := {lower(h) | some h in v; is_string(h)} if {
	v := worker.repositories.api_hosts
	is_array(v)
} else := set()

host_allowed if {
	some p in granted_hosts
	is_string(p)
	host_matches(lower(p), host)
}

default host_denied := false

host_denied if {
	some p in denied_hosts
	is_string(p)
	host_matches(lower(p), host)
}

is_v6(addr) := contains(addr, ":")

# An address is checked only once it is known to be an IP address in text
# (a valid /32 once the prefix is added; sprintf takes any value): the
# range check calls net.cidr_contains, which errors on anything else, and
# an error an engine reads as undefined would make the check not fire. An
# address that is not one denies.
in_blocked_range(addr) if {
	is_v6(addr) == true
	some c in blocked_v6
	net.cidr_contains(c, addr)
}

in_blocked_range(addr) if {
	is_v6(addr) == false
	some c in blocked_v4
	net.cidr_contains(c, addr)
}

exempt(addr) if {
	some c in exempt_cidrs
	is_string(c)
	net.cidr_is_valid(c)
	is_v6(addr) == is_v6(c)
	net.cidr_contains(c, addr)
}

net_deny contains "the connection names no host" if host == ""

net_deny contains msg if {
	input.action.resolved == true
	count(addresses) == 0
	msg := sprintf("%v was not resolved: the runner must resolve a host so every address can be checked", [host])
}

net_deny contains msg if {
	input.action.host_is_ip == true
	count(addresses) == 0
	msg := sprintf("%v is an IP address but the action carries no address to check", [host])
}

net_deny contains msg if {
	some addr in addresses
	not net.cidr_is_valid(sprintf("%v/32", [addr]))
	msg := sprintf("%v resolves to %v, which is not an IP address", [host, addr])
}

net_deny contains msg if {
	some addr in addresses
	net.cidr_is_valid(sprintf("%v/32", [addr]))
	in_blocked_range(addr)
	not exempt(addr)
	msg := sprintf("%v resolves to %v, a loopback, private, link-local or metadata address", [host, addr])
}

net_deny contains msg if {
	host in metadata_hosts
	msg := sprintf("%v is a cloud metadata service", [host])
}

net_deny contains msg if {
	host_denied
	msg := sprintf("%v is on a deny list", [host])
}

net_deny contains msg if {
	not host_allowed
	msg := sprintf("%v is not on the network allowlist", [host])
}

net_allow contains msg if {
	host_allowed
	msg := sprintf("%v is on the network allowlist", [host])
}
