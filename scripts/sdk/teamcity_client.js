// teamcity-client (npm), unchanged, against mock-teamcity. It reads projects and builds only
// (no users or groups), so this run reads the projects the simulator starts with, through
// TeamCity's older `/httpAuth/app/rest/` URLs and HTTP Basic. Usage: node teamcity_client.js
// TEAMCITY_URL TOKEN (the server token as the super user's password, as TeamCity allows).
// Prints one line per step; exits 1 when any step fails.
'use strict';
const TeamcityClient = require('teamcity-client');

const [url, token] = process.argv.slice(2);
const { protocol, host } = new URL(url);
const api = new TeamcityClient({ protocol: `${protocol}//`, host, user: 'admin', password: token });
const failures = [];

// `check` judges the answer; with `refusal` set, the step passes only when the client
// rejects with that text in its error instead.
async function step(name, call, check, refusal) {
  let ok = false;
  let said = '';
  try {
    const answer = await call();
    ok = refusal === undefined && check(answer);
  } catch (e) {
    said = `: ${String(e.message || e).slice(0, 200)}`;
    ok = refusal !== undefined && said.includes(refusal);
  }
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${said}`);
  if (!ok) failures.push(name);
}

(async () => {
  await step('list projects', () => api.project.list(''),
    (r) => r.project.some((p) => p.id === 'Backend'));
  await step('a project by id', () => api.project.detail({ id: 'Backend' }),
    (p) => p.name === 'Backend' && p.parentProjectId === '_Root');
  await step('a subproject by id', () => api.project.detail({ id: 'Backend_Api' }),
    (p) => p.parentProjectId === 'Backend');
  await step('an unknown project is refused', () => api.project.detail({ id: 'NoSuchProject' }),
    undefined, 'code 404');
  if (failures.length) {
    console.log(`${failures.length} steps failed: ${failures.join(', ')}`);
    process.exit(1);
  }
  console.log('every step passed');
})();
