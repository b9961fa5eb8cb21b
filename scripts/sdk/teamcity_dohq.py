"""dohq-teamcity (PyPI), unchanged, through a joiner, a mover and a leaver against
mock-teamcity. Usage: teamcity_dohq.py TEAMCITY_URL TOKEN (the server token as the super user's
password, as TeamCity allows; trust the CA with REQUESTS_CA_BUNDLE / SSL_CERT_FILE).
Prints one line per step; exits 1 when any step fails."""

import sys
import time

from dohq_teamcity import Group, TeamCity, User
from dohq_teamcity.rest import ApiException

failures = []


def step(name, call, check=lambda r: True):
    try:
        result = call()
        ok = check(result)
        print(f"{'ok  ' if ok else 'FAIL'} {name}", flush=True)
    except (ApiException, Exception) as e:  # any error is this step's failure
        result, ok = None, False
        print(f"FAIL {name}: {type(e).__name__} {str(e)[:300]}", flush=True)
    if not ok:
        failures.append(name)
    return result


tc = TeamCity(sys.argv[1], auth=("", sys.argv[2]))
step("server info", lambda: tc.server.serve_server_info(), lambda s: s.version is not None)
tag = str(int(time.time() * 1000))
name = f"sdk-{tag}"
user = step("create_user", lambda: tc.users.create_user(body=User(username=name, name="Ann Lee",
                                                                    email=f"{name}@example.test")),
            lambda u: u.username == name)
step("get the user by username", lambda: tc.users.serve_user(f"username:{name}"),
     lambda u: u.name == "Ann Lee")
step("list users", lambda: tc.users.serve_users(), lambda us: name in [u.username for u in us.user])
group_key = f"SDK_{tag}"
step("add_group", lambda: tc.groups.add_group(body=Group(key=group_key, name=f"sdk {tag}")),
     lambda g: g.key == group_key)
step("put the user in the group", lambda: tc.users.add_group(f"username:{name}",
                                                            body=Group(key=group_key)))
step("the user's groups", lambda: tc.users.get_groups(f"username:{name}"),
     lambda gs: group_key in [g.key for g in gs.group])
step("rename the user (mover)", lambda: tc.users.set_user_field(f"username:{name}", "name",
                                                                 body="Ann Lee-Smith"))
step("the new name reads back", lambda: tc.users.serve_user(f"username:{name}"),
     lambda u: u.name == "Ann Lee-Smith")
step("take the user out of the group", lambda: tc.users.remove_group(f"username:{name}",
                                                                     f"key:{group_key}"))
step("delete the user (leaver)", lambda: tc.users.delete_user(f"username:{name}"))
step("the user is gone", lambda: tc.users.serve_users(),
     lambda us: name not in [u.username for u in (us.user or [])])
step("delete the group", lambda: tc.groups.delete_group(f"key:{group_key}"))

if failures:
    print(f"{len(failures)} steps failed: {', '.join(failures)}")
    sys.exit(1)
print("every step passed")
