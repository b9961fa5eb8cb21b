// Okta's official Node SDK (npm `@okta/okta-sdk-nodejs`), unchanged, through a joiner, a mover
// and a leaver against mock-idp. Usage: node okta_node.js IDP_URL TOKEN (trust the IdP's CA with
// NODE_EXTRA_CA_CERTS). Prints one line per step; exits 1 when any step fails.
'use strict';
const okta = require('@okta/okta-sdk-nodejs');

const [url, token] = process.argv.slice(2);
const failures = [];

async function step(name, call, check = () => true) {
  try {
    const result = await call();
    const ok = check(result);
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}`);
    if (!ok) failures.push(name);
    return result;
  } catch (e) {
    console.log(`FAIL ${name}: ${e.status || ''} ${e.message}`);
    failures.push(name);
    return undefined;
  }
}

async function refused(name, call) {
  try {
    await call();
    console.log(`FAIL ${name}: accepted`);
    failures.push(name);
  } catch (e) {
    console.log(`ok   ${name}: ${e.status} ${e.errorCode || ''}`);
  }
}

async function all(collection) {
  const items = [];
  for await (const item of await collection) items.push(item);
  return items;
}

async function faults(rate) {
  const resp = await fetch(`${url}/_sim/faults`, {
    method: 'PUT',
    headers: { Authorization: `SSWS ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ rate429: rate }),
  });
  if (!resp.ok) throw new Error(`faults: ${resp.status}`);
}

(async () => {
  const client = new okta.Client({ orgUrl: url, token });
  const tag = `${Date.now()}`;
  const login = `node-${tag}@example.test`;

  // Joiner
  const user = await step('createUser (activate=true)', () => client.userApi.createUser({
    body: { profile: { firstName: 'Ann', lastName: 'Lee', email: login, login, department: 'Engineering' } },
    activate: true,
  }), (u) => u.status === 'PROVISIONED');
  if (!user) process.exit(1);
  const uid = user.id;
  await step('getUser by id', () => client.userApi.getUser({ userId: uid }), (u) => u.profile.login === login);
  await step('getUser by login', () => client.userApi.getUser({ userId: login }), (u) => u.id === uid);
  await step('listUsers search', () => all(client.userApi.listUsers({ search: `profile.login eq "${login}"` })),
    (us) => us.length === 1 && us[0].id === uid);
  await step('listUsers filter', () => all(client.userApi.listUsers({ filter: `profile.login eq "${login}"` })),
    (us) => us.length === 1);
  for (let i = 0; i < 3; i++) {
    const extra = `node-${tag}-${i}@example.test`;
    await step(`createUser page filler ${i}`, () => client.userApi.createUser({
      body: { profile: { firstName: 'P', lastName: `${i}`, email: extra, login: extra } }, activate: true,
    }));
  }
  // The collection follows the Link headers itself; pages of two.
  await step('listUsers q pages through Link headers', () => all(client.userApi.listUsers({ q: `node-${tag}`, limit: 2 })),
    (us) => new Set(us.map((u) => u.id)).size === 4 && us.length === 4);

  // Mover
  await step('updateUser (partial profile)', () => client.userApi.updateUser({ userId: uid, user: { profile: { department: 'Platform' } } }),
    (u) => u.profile.department === 'Platform' && u.profile.firstName === 'Ann');
  const group = await step('createGroup', () => client.groupApi.createGroup({ group: { profile: { name: `node-${tag}-eng` } } }));
  const gid = group && group.id;
  await step('assignUserToGroup', () => client.groupApi.assignUserToGroup({ groupId: gid, userId: uid }));
  await step('listGroupUsers', () => all(client.groupApi.listGroupUsers({ groupId: gid })), (us) => us.length === 1 && us[0].id === uid);
  await step('listGroups q', () => all(client.groupApi.listGroups({ q: `node-${tag}` })), (gs) => gs.some((g) => g.id === gid));
  await step('unassignUserFromGroup', () => client.groupApi.unassignUserFromGroup({ groupId: gid, userId: uid }));
  await step('the member is gone', () => all(client.groupApi.listGroupUsers({ groupId: gid })), (us) => us.length === 0);
  const apps = await step('listApplications', () => all(client.applicationApi.listApplications()));
  if (apps && apps.length) {
    await step('assignGroupToApplication', () => client.applicationApi.assignGroupToApplication({ appId: apps[0].id, groupId: gid, applicationGroupAssignment: {} }));
  }

  // Leaver
  await step('deactivateUser', () => client.userApi.deactivateUser({ userId: uid }));
  await step('the user is DEPROVISIONED', () => client.userApi.getUser({ userId: uid }), (u) => u.status === 'DEPROVISIONED');
  await refused('reactivateUser of a DEPROVISIONED user is refused', () => client.userApi.reactivateUser({ userId: uid, sendEmail: false }));
  await step('activateUser brings the leaver back', () => client.userApi.activateUser({ userId: uid, sendEmail: false }));
  await step('deactivateUser again', () => client.userApi.deactivateUser({ userId: uid }));
  await step('deleteUser', () => client.userApi.deleteUser({ userId: uid }));
  await refused('the deleted user is 404', () => client.userApi.getUser({ userId: uid }));
  // Bounded (since and until): a polling query (since alone) has a next link for ever, in Okta
  // as here, and the collection would follow it for ever.
  const since = new Date(Date.now() - 3600e3).toISOString();
  const until = new Date(Date.now() + 60e3).toISOString();
  await step('listLogEvents since + until + filter', () => all(client.systemLogApi.listLogEvents({ since, until, filter: 'eventType eq "user.lifecycle.create"' })),
    (es) => es.length >= 1 && es.every((e) => e.eventType === 'user.lifecycle.create'));
  await step('deleteGroup', () => client.groupApi.deleteGroup({ groupId: gid }));

  // A 429 with Okta's rate-limit headers: the SDK waits as they say and retries.
  await faults(100);
  const started = Date.now();
  const lifted = new Promise((resolve) => setTimeout(() => faults(0).then(resolve, resolve), 1000));
  await step('a 429 is retried after the wait X-Rate-Limit-Reset gives',
    () => client.userApi.getUser({ userId: `node-${tag}-0@example.test` }), () => Date.now() - started >= 1500);
  await lifted;

  if (failures.length) {
    console.log(`${failures.length} steps failed: ${failures.join(', ')}`);
    process.exit(1);
  }
  console.log('every step passed');
})();
