"""An agent written with the official AgentField Python SDK (PyPI `agentfield`).

The fidelity test starts it against the mock: it must register, and its
reasoner and skill must run through the mock's execute API. Usage:

    python sdk_agent.py PORT AGENTFIELD_URL API_KEY
"""

import sys

from agentfield import Agent

port, server, api_key = int(sys.argv[1]), sys.argv[2], sys.argv[3]

app = Agent(
    node_id="py-fidelity",
    agentfield_server=server,
    api_key=api_key,
    callback_url=f"http://127.0.0.1:{port}",
    version="1.0.0",
    # Anchor issues its own standard credentials; the control plane's DID and
    # VC features are not part of the contract the mock implements.
    enable_did=False,
    vc_enabled=False,
)


@app.reasoner()
async def greet(name: str) -> dict:
    """Greets by name."""
    return {"greeting": f"hello {name}", "via": "python-sdk"}


@app.skill()
def add(a: int, b: int) -> dict:
    """Adds two numbers."""
    return {"sum": a + b}


if __name__ == "__main__":
    app.serve(port=port, host="127.0.0.1", heartbeat_interval=2)
