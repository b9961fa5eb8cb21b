"""Okta's official Python SDK (PyPI `okta`), unchanged, through a joiner, a mover and a leaver
against mock-idp. Usage: okta_python.py IDP_URL TOKEN (trust the IdP's CA with SSL_CERT_FILE).
Prints one line per step; exits 1 when any step fails."""

import asyncio
import json
import sys
import time
import urllib.request

from okta.client import Client as OktaClient
from okta.pagination import PaginationHelper

failures = []


async def err_of(call):
    """The error of an SDK call: the last of the tuple it gives (2 or 3 values)."""
    return (await call)[-1]


def step(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + str(detail) if detail else ''}", flush=True)
    if not ok:
        failures.append(name)


async def main(url, token):
    client = OktaClient({"orgUrl": url, "token": token})
    tag = str(int(time.time() * 1000))
    login = f"sdk-{tag}@example.test"

    # Joiner
    body = {"profile": {"firstName": "Ann", "lastName": "Lee", "email": login, "login": login,
                        "department": "Engineering"}}
    user, _, err = await client.create_user(body, activate=True)
    step("create_user (activate=true)", err is None and user is not None, err)
    if err:
        return
    uid = user.id
    # Okta: activated without a password, a user is PROVISIONED until they set one.
    step("the new user is PROVISIONED", str(user.status).endswith("PROVISIONED"), user.status)
    got, _, err = await client.get_user(uid)
    step("get_user by id", err is None and got.profile.login == login, err)
    got, _, err = await client.get_user(login)
    step("get_user by login", err is None and got is not None and got.id == uid, err)

    found, _, err = await client.list_users(search=f'profile.login eq "{login}"')
    step("list_users search", err is None and [u.id for u in found] == [uid], err)
    found, _, err = await client.list_users(filter=f'profile.login eq "{login}"')
    step("list_users filter", err is None and [u.id for u in found] == [uid], err)
    found, _, err = await client.list_users(q=f"sdk-{tag}")
    step("list_users q", err is None and uid in [u.id for u in found], err)

    # Paging through Link headers: three more users, pages of two.
    for i in range(3):
        extra = f"sdk-{tag}-{i}@example.test"
        _, _, err = await client.create_user(
            {"profile": {"firstName": "P", "lastName": f"{i}", "email": extra, "login": extra}},
            activate=True)
        step(f"create_user page filler {i}", err is None, err)
    seen, pages, cursor = [], 0, None
    while pages < 10:
        page, resp, err = await client.list_users(q=f"sdk-{tag}", limit=2, after=cursor)
        if err:
            break
        pages += 1
        seen += [u.id for u in page]
        cursor = PaginationHelper.extract_next_cursor(resp.headers)
        if not cursor:
            break
    step("list_users pages through Link headers", err is None and len(set(seen)) == len(seen) == 4
         and pages == 2, f"{len(seen)} users on {pages} pages, {err}")

    # Mover: a partial profile update, then a group change.
    upd, _, err = await client.update_user(uid, {"profile": {"department": "Platform"}})
    step("update_user (partial profile)", err is None and upd.profile.department == "Platform", err)
    got, _, err = await client.get_user(uid)
    step("the update kept the other attributes", err is None and got.profile.first_name == "Ann", err)

    group, _, err = await client.add_group({"profile": {"name": f"sdk-{tag}-eng",
                                                        "description": "from the SDK"}})
    step("add_group", err is None and group is not None, err)
    gid = group.id
    err = await err_of(client.assign_user_to_group(gid, uid))
    step("assign_user_to_group", err is None, err)
    members, _, err = await client.list_group_users(gid)
    step("list_group_users", err is None and [m.id for m in members] == [uid], err)
    groups, _, err = await client.list_groups(q=f"sdk-{tag}")
    step("list_groups q", err is None and gid in [g.id for g in groups], err)
    err = await err_of(client.unassign_user_from_group(gid, uid))
    step("unassign_user_from_group", err is None, err)
    members, _, err = await client.list_group_users(gid)
    step("the member is gone", err is None and members == [], err)

    # Apps and assignments.
    apps, _, err = await client.list_applications()
    step("list_applications", err is None, err)
    if apps:
        app = apps[0]
        err = await err_of(client.assign_group_to_application(app.id, gid, {}))
        step("assign_group_to_application", err is None, err)
        assigned, _, err = await client.list_application_group_assignments(app.id)
        step("list_application_group_assignments", err is None and gid in [a.id for a in assigned], err)

    # Leaver: deactivate, reactivate, deactivate again, delete.
    err = await err_of(client.deactivate_user(uid))
    step("deactivate_user", err is None, err)
    got, _, err = await client.get_user(uid)
    step("the user is DEPROVISIONED", err is None and str(got.status).endswith("DEPROVISIONED"), got and got.status)
    # Okta brings a DEPROVISIONED user back with activate; reactivate is for PROVISIONED ones.
    err = await err_of(client.reactivate_user(uid))
    step("reactivate_user of a DEPROVISIONED user is refused", err is not None, err)
    err = await err_of(client.activate_user(uid, send_email=False))
    step("activate_user brings the leaver back", err is None, err)
    got, _, err = await client.get_user(uid)
    step("the user is back", err is None and not str(got.status).endswith("DEPROVISIONED"), got and got.status)
    err = await err_of(client.deactivate_user(uid))
    step("deactivate_user again", err is None, err)
    err = await err_of(client.delete_user(uid))
    step("delete_user", err is None, err)
    _, resp, err = await client.get_user(uid)
    step("the deleted user is 404", err is not None and resp is not None and getattr(resp, "status", None) == 404,
         err)

    # The System Log, bounded and filtered.
    since = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 3600))
    events, _, err = await client.list_log_events(
        since=since, filter='eventType eq "user.lifecycle.create"')
    step("list_log_events since + filter", err is None and len(events) >= 1
         and all(e.event_type == "user.lifecycle.create" for e in events), err)

    err = await err_of(client.delete_group(gid))
    step("delete_group", err is None, err)

    # A 429 with Okta's rate-limit headers: the SDK waits as they say and retries.
    def faults(rate):
        req = urllib.request.Request(f"{url}/_sim/faults", method="PUT",
                                     data=json.dumps({"rate429": rate}).encode(),
                                     headers={"Authorization": f"SSWS {token}",
                                              "Content-Type": "application/json"})
        urllib.request.urlopen(req).read()

    faults(100)
    started = time.monotonic()
    lifted = asyncio.get_running_loop().run_in_executor(None, lambda: (time.sleep(1), faults(0)))
    users_left = f"sdk-{tag}-0@example.test"  # a page filler, still there
    got, _, err = await client.get_user(users_left)
    await lifted
    waited = time.monotonic() - started
    step("a 429 is retried after the wait X-Rate-Limit-Reset gives", err is None and waited >= 1.5,
         f"{err}, {waited:.1f} s")
    faults(100)
    _, _, err = await client.get_user(users_left)
    faults(0)
    step("a 429 that lasts ends in Okta's E0000047 after the retries", "E0000047" in str(err), err)


asyncio.run(main(sys.argv[1], sys.argv[2]))
if failures:
    print(f"{len(failures)} steps failed: {', '.join(failures)}")
    sys.exit(1)
print("every step passed")
