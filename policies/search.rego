# WebSearch: a query goes only to the search provider the worker
# configures (`[websearch]`, shown to policies as `trusted.worker.websearch`),
# and its connection to the provider's host is decided as a `net.connect`,
# under the address guard of net.rego. Add your own `search_deny` rules to
# refuse queries (by length, by words).
package runner

import rego.v1

search_config := w if {
	w := worker.websearch
	is_object(w)
} else := {}

search_provider := p if {
	p := search_config.provider
	is_string(p)
} else := ""

search_host := lower(h) if {
	h := search_config.host
	is_string(h)
} else := ""

search_deny contains "no search provider is configured for this worker ([websearch] provider)" if {
	search_provider == ""
}

search_deny contains msg if {
	search_provider != ""
	object.get(input, ["action", "provider"], "") != search_provider
	msg := sprintf("the search must go to the worker's provider %v", [search_provider])
}

search_deny contains "the search query is empty" if {
	q := object.get(input, ["action", "query"], "")
	is_string(q)
	trim_space(q) == ""
}

search_deny contains "the search query is not a string" if {
	not is_string(object.get(input, ["action", "query"], ""))
}

search_deny contains "the search query is longer than 400 characters" if {
	q := object.get(input, ["action", "query"], "")
	is_string(q)
	count(q) > 400
}

search_allow contains msg if {
	search_provider != ""
	object.get(input, ["action", "provider"], "") == search_provider
	msg := sprintf("searching with the worker's provider %v", [search_provider])
}

# The provider's host, for WebSearch's own connection.
host_allowed if {
	kind == "net.connect"
	tool == "WebSearch"
	search_host != ""
	host == search_host
}
