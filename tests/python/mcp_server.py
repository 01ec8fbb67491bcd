"""An MCP server for the e2e tests, on the official MCP Python SDK.

argv: host, port, bearer token, log file. Streamable HTTP at /mcp, behind
a bearer-token check. Every HTTP request is recorded as one JSON line (the
JSON-RPC method, and for tools/call the tool and its arguments; a request
with a wrong token as `unauthorized`), so a test asserts exactly what
reached the server.
"""

import hmac
import json
import sys

import uvicorn
from mcp.server.mcpserver import MCPServer  # mcp 2.x: FastMCP is now MCPServer

host, port, token, log = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
mcp = MCPServer("fake-tools")


def record(**kw):
    with open(log, "a") as f:
        f.write(json.dumps(kw) + "\n")


@mcp.tool()
def lookup(key: str) -> str:
    """Look a key up in the catalogue."""
    return f"value-of-{key}"


@mcp.tool()
def write_note(text: str) -> str:
    """Write a note to the shared notebook."""
    record(effect="write_note", text=text)
    return f"noted: {text}"


@mcp.tool(name="bad.name")
def bad_name() -> str:
    """A tool whose name no model API accepts."""
    return "never offered"


inner = mcp.streamable_http_app()


async def app(scope, receive, send):
    if scope["type"] != "http":
        await inner(scope, receive, send)
        return
    got = dict(scope["headers"]).get(b"authorization", b"")
    if not hmac.compare_digest(got, b"Bearer " + token.encode()):
        record(unauthorized=True, method=scope["method"])
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
        await send({"type": "http.response.body", "body": b'{"error":"unauthorized"}'})
        return
    # Read the whole body, record it, and replay it to the SDK's app.
    chunks = []
    while True:
        m = await receive()
        chunks.append(m.get("body", b""))
        if not m.get("more_body"):
            break
    body = b"".join(chunks)
    entry = {"http": scope["method"]}
    try:
        msg = json.loads(body) if body else None
    except ValueError:
        msg = None
    if isinstance(msg, dict):
        entry["rpc"] = msg.get("method")
        if msg.get("method") == "tools/call":
            p = msg.get("params") or {}
            entry["tool"] = p.get("name")
            entry["arguments"] = p.get("arguments")
    record(**entry)
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    await inner(scope, replay, send)


uvicorn.run(app, host=host, port=port, log_level="warning")
