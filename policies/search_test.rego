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
