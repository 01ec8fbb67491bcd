# Tests of web.search and WebSearch's connection.
package runner_test

import data.runner
import rego.v1

search_worker(i) := object.union(i, {"trusted": {
	"agent": {"enabled_tools": ["WebSearch"]},
	"worker": {"websearch": {"provider": "searxng", "host": "search.example"}},
}})

search(q) := search_worker(object.union(base, {"action": {"kind": "web.search", "tool": "WebSearch", "provider": "searxng", "query": q}}))

test_search_allowed_with_the_workers_provider if {
	runner.decision.result == "allow" with input as search("rust")
}

test_search_denied_without_a_provider if {
	i := object.union(base, {
		"trusted": {"agent": {"enabled_tools": ["WebSearch"]}},
		"action": {"kind": "web.search", "tool": "WebSearch", "provider": "searxng", "query": "rust"},
	})
	runner.decision.result == "deny" with input as i
}

test_search_to_another_provider_denied if {
	i := object.union(search("rust"), {"action": {"provider": "brave"}})
	runner.decision.result == "deny" with input as i
}

search_connect(host, addr) := search_worker(object.union(base, {"action": {
	"kind": "net.connect", "tool": "WebSearch", "host": host, "host_is_ip": false, "port": 443,
	"scheme": "https", "addresses": [addr], "resolved": true,
}}))

test_websearch_connects_to_its_provider if {
	runner.decision.result == "allow" with input as search_connect("search.example", "93.184.216.34")
}

test_websearch_connects_nowhere_else if {
	runner.decision.result == "deny" with input as search_connect("other.example", "93.184.216.34")
}

test_search_with_an_empty_query_denied if {
	runner.decision.result == "deny" with input as search("   ")
}

test_search_with_a_query_over_400_characters_denied if {
	long := concat("", [x | some _ in numbers.range(1, 401); x := "a"])
	d := runner.decision with input as search(long)
	d.result == "deny"
	some r in d.reasons
	contains(r, "longer than 400")
}

test_search_with_a_query_of_400_characters_allowed if {
	q := concat("", [x | some _ in numbers.range(1, 400); x := "é"])
	runner.decision.result == "allow" with input as search(q)
}

test_search_not_enabled_for_the_agent_denied if {
	i := object.union(search("rust"), {"trusted": {"agent": {"enabled_tools": ["Read"]}}})
	runner.decision.result == "deny" with input as i
}

# The provider's host is for WebSearch only: WebFetch gains nothing from it.
test_webfetch_to_the_provider_host_denied_without_an_allowlist if {
	i := object.union(search_connect("search.example", "93.184.216.34"), {"action": {"tool": "WebFetch"}})
	runner.decision.result == "deny" with input as i
}

# The address guard still applies to the provider's own host.
test_provider_on_loopback_denied_without_allow_cidrs if {
	i := object.union(search_connect("search.example", "127.0.0.1"), {"trusted": {"worker": {"websearch": {"host": "search.example"}}}})
	d := runner.decision with input as i
	d.result == "deny"
	some r in d.reasons
	contains(r, "loopback")
}

test_provider_on_loopback_allowed_with_allow_cidrs if {
	i := object.union(search_connect("search.example", "127.0.0.1"), {"trusted": {"worker": {"network": {"allow_cidrs": ["127.0.0.1/32"]}}}})
	runner.decision.result == "allow" with input as i
}

test_provider_ip_literal_outside_allow_cidrs_denied_in_the_host_phase if {
	i := search_worker(object.union(base, {
		"action": {
			"kind": "net.connect", "tool": "WebSearch", "host": "127.0.0.2", "host_is_ip": true, "port": 8888,
			"scheme": "http", "addresses": ["127.0.0.2"], "resolved": false,
		},
		"trusted": {"worker": {"websearch": {"host": "127.0.0.2"}, "network": {"allow_cidrs": ["127.0.0.1/32"]}}},
	}))
	runner.decision.result == "deny" with input as i
}

test_deny_listed_provider_host_denied if {
	i := object.union(search_connect("search.example", "93.184.216.34"), {"trusted": {"worker": {"network": {"deny_hosts": ["search.example"]}}}})
	d := runner.decision with input as i
	d.result == "deny"
	some r in d.reasons
	contains(r, "deny list")
}

test_provider_host_compared_in_lower_case if {
	i := object.union(search_connect("search.example", "93.184.216.34"), {"trusted": {"worker": {"websearch": {"host": "Search.Example"}}}})
	runner.decision.result == "allow" with input as i
}

test_metadata_host_as_provider_denied if {
	i := object.union(search_connect("169.254.169.254", "169.254.169.254"), {"trusted": {"worker": {"websearch": {"host": "169.254.169.254"}}}})
	runner.decision.result == "deny" with input as i
}
