# Tests of mcp.call and an MCP tool's connection.
package runner_test

import data.runner
import rego.v1

mcp_agent(toolsets) := object.union(base, {"trusted": {"agent": {
	"mcp_servers": [{"name": "docs", "url": "https://mcp.example:8443/mcp"}],
	"mcp_toolsets": toolsets,
}}})

mcp_call(t, toolsets) := object.union(mcp_agent(toolsets), {"action": {
	"kind": "mcp.call", "tool": concat("__", ["mcp", "docs", t]), "server": "docs",
	"url": "https://mcp.example:8443/mcp", "host": "mcp.example", "tool_name": t, "arguments": {},
}})

test_mcp_call_asks_by_default if {
	d := runner.decision with input as mcp_call("search", {"docs": {}})
	d.result == "ask"
}

test_mcp_call_allowed_when_always_allow if {
	d := runner.decision with input as mcp_call("search", {"docs": {"configs": {"search": {"permission_policy": "always_allow"}}}})
	d.result == "allow"
}

test_mcp_call_denied_without_toolset if {
	d := runner.decision with input as mcp_call("search", {})
	d.result == "deny"
}

test_mcp_call_denied_when_tool_disabled if {
	d := runner.decision with input as mcp_call("search", {"docs": {"configs": {"search": {"enabled": false}}}})
	d.result == "deny"
}

test_mcp_call_to_another_url_denied if {
	i := object.union(mcp_call("search", {"docs": {"permission_policy": "always_allow"}}), {"action": {"url": "https://evil.example/mcp"}})
	runner.decision.result == "deny" with input as i
}

mcp_connect(host, addr) := object.union(mcp_agent({"docs": {"permission_policy": "always_allow"}}), {"action": {
	"kind": "net.connect", "tool": "mcp__docs__search", "host": host, "host_is_ip": false, "port": 8443,
	"scheme": "https", "addresses": [addr], "resolved": true,
}})

test_mcp_tool_connects_to_its_server if {
	runner.decision.result == "allow" with input as mcp_connect("mcp.example", "93.184.216.34")
}

test_mcp_tool_connects_nowhere_else if {
	runner.decision.result == "deny" with input as mcp_connect("other.example", "93.184.216.34")
}

test_mcp_server_behind_a_private_address_denied if {
	runner.decision.result == "deny" with input as mcp_connect("mcp.example", "127.0.0.2")
}

mcp_listing(tool, host, addr, toolsets) := object.union(mcp_agent(toolsets), {"action": {
	"kind": "net.connect", "tool": tool, "host": host, "host_is_ip": false, "port": 8443,
	"scheme": "https", "addresses": [addr], "resolved": true,
}})

test_mcp_listing_connects_to_its_server if {
	runner.decision.result == "allow" with input as mcp_listing("mcp__docs", "mcp.example", "93.184.216.34", {"docs": {}})
}

test_mcp_listing_needs_a_toolset if {
	runner.decision.result == "deny" with input as mcp_listing("mcp__docs", "mcp.example", "93.184.216.34", {})
}

test_mcp_listing_of_a_disabled_toolset_denied if {
	runner.decision.result == "deny" with input as mcp_listing("mcp__docs", "mcp.example", "93.184.216.34", {"docs": {"enabled": false}})
}

test_mcp_listing_of_a_disabled_toolset_with_one_enabled_tool if {
	ts := {"docs": {"enabled": false, "configs": {"search": {"enabled": true}}}}
	runner.decision.result == "allow" with input as mcp_listing("mcp__docs", "mcp.example", "93.184.216.34", ts)
}

test_mcp_listing_connects_nowhere_else if {
	runner.decision.result == "deny" with input as mcp_listing("mcp__docs", "other.example", "93.184.216.34", {"docs": {}})
}

test_mcp_listing_of_an_unknown_server_denied if {
	runner.decision.result == "deny" with input as mcp_listing("mcp__other", "mcp.example", "93.184.216.34", {"docs": {}, "other": {}})
}

test_mcp_listing_behind_a_loopback_address_denied if {
	runner.decision.result == "deny" with input as mcp_listing("mcp__docs", "mcp.example", "127.0.0.2", {"docs": {}})
}

test_mcp_listing_is_only_a_connection if {
	i := object.union(mcp_agent({"docs": {}}), {"action": {"kind": "fs.read", "tool": "mcp__docs", "path": "/workspace/x"}})
	runner.decision.result == "deny" with input as i
}

test_mcp_call_of_unknown_server_denied if {
	i := object.union(mcp_call("search", {"docs": {"permission_policy": "always_allow"}}), {"action": {"tool": "mcp__evil__search", "server": "evil"}})
	runner.decision.result == "deny" with input as i
}

test_mcp_call_with_another_tool_name_denied if {
	i := object.union(mcp_call("search", {"docs": {"permission_policy": "always_allow"}}), {"action": {"tool_name": "delete"}})
	runner.decision.result == "deny" with input as i
}

test_mcp_toolset_level_always_allow if {
	d := runner.decision with input as mcp_call("search", {"docs": {"permission_policy": "always_allow"}})
	d.result == "allow"
}

test_mcp_unknown_permission_policy_denied_naming_it if {
	every p in ["always-allow", "allow", "", "ALWAYS_ALLOW", "never"] {
		d := runner.decision with input as mcp_call("search", {"docs": {"configs": {"search": {"permission_policy": p}}}})
		d.result == "deny"
	}
	d := runner.decision with input as mcp_call("search", {"docs": {"permission_policy": "always-allow"}})
	d.result == "deny"
	some r in d.reasons
	contains(r, "always-allow")
}

test_mcp_always_ask_asks if {
	d := runner.decision with input as mcp_call("search", {"docs": {"permission_policy": "always_ask"}})
	d.result == "ask"
}

test_mcp_tool_connects_only_to_its_servers_port if {
	i := object.union(mcp_connect("mcp.example", "93.184.216.34"), {"action": {"port": 22}})
	d := runner.decision with input as i
	d.result == "deny"
	some r in d.reasons
	contains(r, "8443")
}

test_mcp_listing_connects_only_to_its_servers_port if {
	i := object.union(mcp_listing("mcp__docs", "mcp.example", "93.184.216.34", {"docs": {}}), {"action": {"port": 443}})
	runner.decision.result == "deny" with input as i
}

test_mcp_server_port_defaults_by_scheme if {
	a := {"trusted": {"agent": {"mcp_servers": [{"name": "docs", "url": "https://mcp.example/mcp"}]}}}
	ok := object.union(mcp_connect("mcp.example", "93.184.216.34"), object.union(a, {"action": {"port": 443}}))
	runner.decision.result == "allow" with input as ok
	bad := object.union(ok, {"action": {"port": 80}})
	runner.decision.result == "deny" with input as bad
	h := {"trusted": {"agent": {"mcp_servers": [{"name": "docs", "url": "http://mcp.example/mcp"}]}}}
	plain := object.union(mcp_connect("mcp.example", "93.184.216.34"), object.union(h, {"action": {"port": 80, "scheme": "http"}}))
	runner.decision.result == "allow" with input as plain
}
