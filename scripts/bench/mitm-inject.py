# mitmproxy addon: set the upstream credential header, as deployment guides do.
def request(flow):
    flow.request.headers["Authorization"] = "token bench-credential"
