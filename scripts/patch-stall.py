#!/usr/bin/env python3
"""How long one big PATCH takes, and how long other requests wait meanwhile.

Usage: scripts/patch-stall.py SCIM_BASE_URL TOKEN OPERATIONS emails|names

Creates a user, sends it one PATCH of OPERATIONS operations (each adds an e-mail value, or
each replaces displayName) and, from a second thread, reads /ServiceProviderConfig and
creates users while it runs. Prints the PATCH's status and time, then for each probe
(discovery ms, create status, create ms). Standard library only.
"""
import json
import sys
import threading
import time
import urllib.error
import urllib.request

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def main():
    base, token, count, shape = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}

    def call(method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request) as resp:
                status, text = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        return status, (time.perf_counter() - started) * 1000, text

    tag = str(int(time.time() * 1000))
    _, _, created = call("POST", "/Users", {"schemas": [USER], "userName": f"big-{tag}"})
    user = json.loads(created)["id"]
    if shape == "emails":
        ops = [{"op": "add", "path": "emails", "value": [{"value": f"e{i}@x.test", "type": "other"}]}
               for i in range(count)]
    else:
        ops = [{"op": "replace", "path": "displayName", "value": f"name {i}"} for i in range(count)]
    body = {"schemas": [PATCH], "Operations": ops}
    result, probes = {}, []

    def big():
        result["patch"] = call("PATCH", f"/Users/{user}", body)

    def probe():
        time.sleep(0.05)
        for i in range(5):
            _, spc_ms, _ = call("GET", "/ServiceProviderConfig")
            status, ms, _ = call("POST", "/Users", {"schemas": [USER], "userName": f"side-{tag}-{i}"})
            probes.append((round(spc_ms, 1), status, round(ms, 1)))

    threads = [threading.Thread(target=big), threading.Thread(target=probe)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    status, ms, _ = result["patch"]
    print(f"PATCH of {count} {shape} operations ({len(json.dumps(body))} bytes): {status} in {ms:.0f} ms")
    print("meanwhile (discovery ms, create status, create ms):", probes)


if __name__ == "__main__":
    main()
