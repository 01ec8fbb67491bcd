# MCP servers: a tool of an MCP server is called `mcp__<server>__<tool>`
# (server names never contain `__`). It may act only if the pinned agent
# version names the server (`mcp_servers`) and offers the tool
# (`mcp_toolsets`); its call then asks a person unless the tool's
# permission policy is `always_allow` (the vendors' default for MCP is to
# ask). The call's connection to the server is decided as a `net.connect`
# like any other: the server's own host is allowed for its own tools, and
# the address guard of net.rego still applies to every address.
package runner

import rego.v1

mcp_servers := v if {
	v := input.trusted.agent.mcp_servers
	is_array(v)
} else := []

mcp_toolsets := v if {
	v := input.trusted.agent.mcp_toolsets
	is_object(v)
} else := {}

# A malformed toolset map denies rather than reading as "nothing offered"
# (which would deny anyway, with a less useful reason).
mcp_settings := [[["trusted", "agent", "mcp_toolsets"], "object", {}]]

# The tool name split into its server and the server's tool name; for any
# other tool both are "".
mcp_parts := p if {
	is_string(tool)
	startswith(tool, "mcp__")
	p := split(tool, "__")
	count(p) >= 3
} else := []

mcp_server := s if {
	count(mcp_parts) >= 3
	s := mcp_parts[1]
} else := ""

mcp_tool_name := n if {
	count(mcp_parts) >= 3
	n := concat("__", array.slice(mcp_parts, 2, count(mcp_parts)))
} else := ""

# The pinned URL of the tool's server ("" when the version does not name it).
mcp_server_urls := [u |
	some s in mcp_servers
	is_object(s)
	object.get(s, "name", "") == mcp_server
	u := object.get(s, "url", "")
	is_string(u)
]

mcp_server_url := u if {
	mcp_server != ""
	count(mcp_server_urls) == 1
	u := mcp_server_urls[0]
} else := ""

# The URL's host, lower case, without port or brackets.
mcp_url_host(u) := h if {
	m := regex.find_all_string_submatch_n(`^[hH][tT][tT][pP][sS]?://(\[[^\]]+\]|[^/?#:@\[\]]+)`, u, 1)
	count(m) == 1
	h := trim_right(lower(trim(m[0][1], "[]")), ".")
} else := ""

mcp_server_host := mcp_url_host(mcp_server_url)

# The URL's port: the one it names, else 443 for https and 80 for http
# (0 when the URL is not http(s)).
mcp_url_port(u) := p if {
	m := regex.find_all_string_submatch_n(`^[hH][tT][tT][pP][sS]?://(\[[^\]]+\]|[^/?#:@\[\]]+):([0-9]+)`, u, 1)
	count(m) == 1
	p := to_number(m[0][2])
} else := 443 if {
	regex.match(`^[hH][tT][tT][pP][sS]://`, u)
} else := 80 if {
	regex.match(`^[hH][tT][tT][pP]://`, u)
} else := 0

# The tool's permission policy, or "" when the version does not offer it.
mcp_permission := p if {
	mcp_server_url != ""
	set := mcp_toolsets[mcp_server]
	is_object(set)
	configs := object.get(set, "configs", {})
	is_object(configs)
	cfg := object.get(configs, mcp_tool_name, {})
	is_object(cfg)
	object.get(cfg, "enabled", object.get(set, "enabled", true)) == true
	p := object.get(cfg, "permission_policy", object.get(set, "permission_policy", "always_ask"))
	is_string(p)
} else := ""

default mcp_tool_offered := false

mcp_tool_offered if mcp_permission != ""

mcp_deny contains msg if {
	mcp_server_url == ""
	msg := sprintf("MCP server %v is not among the pinned agent version's mcp_servers", [object.get(input, ["action", "server"], "(none)")])
}

mcp_deny contains msg if {
	mcp_server_url != ""
	mcp_permission == ""
	msg := sprintf("tool %v of MCP server %v is not offered by the agent's mcp_toolset", [mcp_tool_name, mcp_server])
}

# The action must be the call of the tool it is named after, to the URL
# the version pins: the runner builds it that way, and a policy that
# allows `mcp__a__x` never lets it reach another server or tool.
mcp_deny contains "the MCP call does not match its tool's server, URL and name" if {
	mcp_permission != ""
	not mcp_call_matches
}

default mcp_call_matches := false

mcp_call_matches if {
	input.action.server == mcp_server
	input.action.url == mcp_server_url
	input.action.tool_name == mcp_tool_name
}

mcp_allow contains msg if {
	mcp_permission != ""
	msg := sprintf("tool %v of MCP server %v is offered by the agent's mcp_toolset", [mcp_tool_name, mcp_server])
}

# Only the two documented values: a typo (`always-allow`, `allow`) or an
# unknown value denies, naming it, rather than silently asking.
mcp_permission_values := {"always_allow", "always_ask"}

mcp_deny contains msg if {
	mcp_permission != ""
	not mcp_permission in mcp_permission_values
	msg := sprintf("the permission policy of MCP tool %v is %v, which is neither always_allow nor always_ask", [tool, mcp_permission])
}

mcp_ask contains msg if {
	mcp_permission != ""
	mcp_permission == "always_ask"
	msg := sprintf("the permission policy of MCP tool %v is %v: a person approves each call", [tool, mcp_permission])
}

# An MCP tool's connection (its calls, or the listing at session start)
# goes only to the port of its server's URL: the server's host may run
# other services on other ports, and the policy that allowed the host
# allowed it for this server only.
mcp_connect_url := mcp_server_url if {
	mcp_permission != ""
} else := mcp_listing_urls[0] if {
	mcp_listing_offered
} else := ""

net_deny contains msg if {
	kind == "net.connect"
	mcp_connect_url != ""
	object.get(input, ["action", "port"], null) != mcp_url_port(mcp_connect_url)
	msg := sprintf("MCP server %v listens on port %v; a connection to port %v is not its own", [mcp_connect_server, mcp_url_port(mcp_connect_url), object.get(input, ["action", "port"], "(none)")])
}

mcp_connect_server := mcp_server if {
	mcp_server != ""
} else := mcp_listing_server

# Its own server's host, for the connection an MCP tool makes.
host_allowed if {
	kind == "net.connect"
	mcp_permission != ""
	mcp_server_host != ""
	host == mcp_server_host
}

# The runner's own connection at session start, listing a server's tools:
# tool `mcp__<server>` (no tool part). It is offered only when the version
# names the server and has a toolset for it that is not disabled as a
# whole, and only as a `net.connect` to the server's own host (the address
# guard of net.rego still judges every address).
mcp_listing_server := s if {
	kind == "net.connect"
	is_string(tool)
	startswith(tool, "mcp__")
	p := split(tool, "__")
	count(p) == 2
	s := p[1]
	s != ""
} else := ""

mcp_listing_urls := [u |
	mcp_listing_server != ""
	some s in mcp_servers
	is_object(s)
	object.get(s, "name", "") == mcp_listing_server
	u := object.get(s, "url", "")
	is_string(u)
]

default mcp_listing_offered := false

mcp_listing_offered if {
	count(mcp_listing_urls) == 1
	set := mcp_toolsets[mcp_listing_server]
	is_object(set)
	mcp_listing_enabled(set)
}

mcp_listing_enabled(set) if object.get(set, "enabled", true) == true

mcp_listing_enabled(set) if {
	configs := object.get(set, "configs", {})
	is_object(configs)
	some c in configs
	is_object(c)
	object.get(c, "enabled", false) == true
}

mcp_tool_offered if mcp_listing_offered

host_allowed if {
	mcp_listing_offered
	h := mcp_url_host(mcp_listing_urls[0])
	h != ""
	host == h
}
