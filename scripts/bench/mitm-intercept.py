# mitmproxy addon for the interception bench: the agent's name has no DNS
# here, so requests go to the local nginx TLS upstream; the credential header
# is set as deployment guides do.
import os

PORT = int(os.environ["MITM_UPSTREAM_PORT"])


def request(flow):
    flow.request.host = "127.0.0.1"
    flow.request.port = PORT
    flow.request.headers["Authorization"] = "token bench-credential"
