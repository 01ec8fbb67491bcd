# Network: only hosts on the trusted allowlists (worker config and the
# pinned agent's grants); deny entries win; and never a loopback, private,
# link-local, multicast or cloud-metadata address, whatever name resolved to
# it — the runner resolves names itself and passes every address in
# input.action.addresses. Ranges in the worker's `allow_cidrs` are exempt
# from the address guard (test rigs, on-premise services).
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

blocked_v6 := ["::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8"]

metadata_hosts := {"metadata.google.internal", "metadata.goog", "metadata", "instance-data"}

worker_network := object.get(worker, "network", {})

grant_network := object.get(grants, "network", {})

granted_hosts := array.concat(object.get(worker_network, "allow_hosts", []), object.get(grant_network, "allow_hosts", []))

denied_hosts := array.concat(object.get(worker_network, "deny_hosts", []), object.get(grant_network, "deny_hosts", []))

exempt_cidrs := object.get(worker_network, "allow_cidrs", [])

host_matches(pattern, host) if pattern == host

host_matches(pattern, host) if {
	startswith(pattern, "*.")
	endswith(host, substring(pattern, 1, -1))
}

host_allowed if {
	some p in granted_hosts
	host_matches(lower(p), input.action.host)
}

host_denied if {
	some p in denied_hosts
	host_matches(lower(p), input.action.host)
}

is_v6(addr) := contains(addr, ":")

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
	is_v6(addr) == is_v6(c)
	net.cidr_contains(c, addr)
}

net_deny contains msg if {
	count(object.get(input.action, "addresses", [])) == 0
	msg := sprintf("%v was not resolved: the runner must resolve a host so every address can be checked", [input.action.host])
}

net_deny contains msg if {
	some addr in input.action.addresses
	in_blocked_range(addr)
	not exempt(addr)
	msg := sprintf("%v resolves to %v, a loopback, private, link-local or metadata address", [input.action.host, addr])
}

net_deny contains msg if {
	input.action.host in metadata_hosts
	msg := sprintf("%v is a cloud metadata service", [input.action.host])
}

net_deny contains msg if {
	host_denied
	msg := sprintf("%v is on a deny list", [input.action.host])
}

net_deny contains msg if {
	not host_allowed
	msg := sprintf("%v is not on the network allowlist", [input.action.host])
}

net_allow contains msg if {
	host_allowed
	msg := sprintf("%v is on the network allowlist", [input.action.host])
}
