// Drives electd's /ui in Debian's chromium, headless, against a running
// cluster; crates/electd/tests/it/ui.rs starts the cluster and runs this.
//
// Environment:
//   ELECTD_UI_SCENARIO     steer (the default), obstacle, v2 or shards
//   ELECTD_UI_NODES        the candidates' base URLs, comma-separated
//   ELECTD_UI_CHROMIUM     the browser (default /usr/bin/chromium)
// steer:
//   ELECTD_UI_ADMIN_NODE   a drained node with --admin-listen: its main URL
//   ELECTD_UI_ADMIN_PID    that node's process, stopped at the end
//   ELECTD_UI_TOKEN        the admin token every node was started with
//   ELECTD_UI_SHOTS        where to save the screenshots
// shards (the first node's page; every node with --shards, settled):
//   ELECTD_UI_KILL_PID     one node's electd, killed (SIGKILL) mid-run
//   ELECTD_UI_KILL_ID      that node's id
//   ELECTD_UI_SHOTS        where to save the screenshot
// obstacle:
//   ELECTD_UI_ETCD         etcd's client URL
//   ELECTD_UI_KEY          a key put by hand that blocks the election
//
// Prints one JSON line of what it saw and measured; exits 1, saying why on
// stderr, at the first check that fails.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const scenario = process.env.ELECTD_UI_SCENARIO || 'steer';
const nodes = env('ELECTD_UI_NODES').split(',');
// Generous: a check fails only when something is wrong, never because the
// machine is busy. The times it took are measured and printed.
const WAIT = 15000;

const seen = {};

async function status(url) {
  const answer = await fetch(`${url}/v1/status`);
  return answer.json();
}

/** The node every candidate names as leader, once they agree. */
async function agreedLeader(not = null) {
  const until = Date.now() + WAIT;
  for (;;) {
    const leaders = await Promise.all(nodes.map((url) => status(url).then((s) => s.leader, () => null)));
    const ids = new Set(leaders.map((l) => l && l.id));
    const [id] = ids;
    if (ids.size === 1 && id && id !== not) {
      return { id, url: leaders[0].advertise };
    }
    if (Date.now() > until) throw new Error(`the candidates do not agree on a leader: ${[...ids]}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function check(condition, what) {
  if (!condition) throw new Error(what);
}

/** The page the helpers below look at. */
let current;

const text = (selector) => current.locator(selector).textContent();
const leaderShown = (id) =>
  current.waitForFunction((want) => document.getElementById('leader').textContent === want, id,
    { timeout: WAIT, polling: 10 });
const leaderNoLonger = (id) =>
  current.waitForFunction((old) => {
    const shown = document.getElementById('leader').textContent;
    return shown !== old && shown !== 'No leader' && shown !== '…';
  }, id, { timeout: WAIT, polling: 10 });
const outcome = async (kind) => {
  await current.locator(`#outcome.${kind}`).waitFor({ timeout: WAIT });
  return text('#outcome');
};
const historyLength = () => current.locator('#history li').count();
/** Whether the page shows a history section, once its first read is done. */
const historyShown = async () => {
  await current.waitForFunction(() => document.getElementById('history-section').hidden
    || document.getElementById('history-note').textContent !== '', null, { timeout: WAIT });
  return !(await current.locator('#history-section').isHidden());
};

/** A key put by hand blocks the election: the page says so and what to
 * do; once the key is deleted, the obstacle goes and a leader shows. */
async function obstacle(page, problems) {
  const etcd = env('ELECTD_UI_ETCD');
  const key = env('ELECTD_UI_KEY');
  await page.goto(`${nodes[0]}/ui`);
  await page.locator('#obstacle').waitFor({ timeout: WAIT });
  seen.obstacle_message = await text('#obstacle-message');
  seen.obstacle_todo = await text('#obstacle-todo');
  check(seen.obstacle_message.includes(`etcdctl del ${key}`), `the message: ${seen.obstacle_message}`);
  // The key holds the leader's place: shown, as not electd's.
  seen.blocked_leader = await text('#leader');
  check(seen.blocked_leader.startsWith('unknown'), `the leader shown: ${seen.blocked_leader}`);
  const deleted = await fetch(`${etcd}/v3/kv/deleterange`, {
    method: 'POST',
    body: JSON.stringify({ key: Buffer.from(key).toString('base64') }),
  });
  check(deleted.ok, `etcd answered the delete with ${deleted.status}`);
  const started = Date.now();
  await page.locator('#obstacle').waitFor({ state: 'hidden', timeout: WAIT });
  seen.obstacle_gone_ms = Date.now() - started;
  const leader = await agreedLeader();
  await leaderShown(leader.id);
  seen.leader_shown = leader.id;
  check(problems.length === 0, `the browser reported: ${problems.join('; ')}`);
}

async function steer(page, problems) {
  const adminNode = env('ELECTD_UI_ADMIN_NODE');
  const adminPid = Number(env('ELECTD_UI_ADMIN_PID'));
  const token = env('ELECTD_UI_TOKEN');
  const shots = env('ELECTD_UI_SHOTS');
  // 1. The leader's page names it, and its stream is live.
  const first = await agreedLeader();
  await page.goto(`${first.url}/ui`);
  await leaderShown(first.id);
  await page.locator('#stream:not(.broken)').getByText('Live').waitFor({ timeout: WAIT });
  seen.leader_shown = first.id;
  seen.candidates_listed = await page.locator('#candidates tbody tr').count();
  check(seen.candidates_listed === nodes.length + 1, `${seen.candidates_listed} candidates listed`);
  // A reload would lose this; every change below must show without one.
  await page.evaluate(() => { window.sameDocument = true; });
  const historyAvailable = await historyShown();
  const historyBefore = historyAvailable ? await historyLength() : 0;

  // 2. A wrong token: the refusal, as a sentence, and nothing changed.
  await page.fill('#token', 'not-the-token');
  await page.click('#resign');
  seen.wrong_token = await outcome('refused');
  check(seen.wrong_token.includes('token was refused'), `wrong token: ${seen.wrong_token}`);
  check(await text('#leader') === first.id, 'the leader changed on a refused resign');

  // 3. A resign from the page: the next leader shows, without a reload.
  await page.fill('#token', token);
  let started = Date.now();
  await page.click('#resign');
  await leaderNoLonger(first.id);
  seen.page_resign_ms = Date.now() - started;
  const second = await agreedLeader(first.id);
  check(await text('#leader') === second.id, `the page names ${await text('#leader')}, the nodes ${second.id}`);
  seen.page_resign_outcome = await outcome('done');

  // 4. A resign from outside (a POST of its own): the stream brings it.
  // The POST answers once the node knows its successor; both are timed.
  const sent = Date.now();
  const answer = await fetch(`${second.url}/v1/resign`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}` },
  });
  check(answer.ok, `the outside resign answered ${answer.status}`);
  started = Date.now();
  await leaderNoLonger(second.id);
  seen.outside_resign_ms = Date.now() - started;
  seen.outside_resign_from_request_ms = Date.now() - sent;
  const third = await agreedLeader(second.id);
  check(await text('#leader') === third.id, `the page names ${await text('#leader')}, the nodes ${third.id}`);
  check(await page.evaluate(() => window.sameDocument === true), 'the page was reloaded');

  // 5. This page no longer serves the leader: it says so and links to it.
  await page.locator('#resign-elsewhere a').click();
  await page.waitForURL(`${third.url}/ui`, { timeout: WAIT });
  await leaderShown(third.id);
  // Each origin keeps its own token: this page asks again.
  check(await page.inputValue('#token') === '', 'a token carried over to another origin');
  await page.fill('#token', token);
  // A drained node may not lead: the refusal says what to do.
  const drained = (await status(adminNode)).id;
  await page.getByRole('button', { name: `Hand over to ${drained}` }).click();
  seen.drained_refusal = await outcome('refused');
  check(seen.drained_refusal.includes(`${drained} is drained`), `drained: ${seen.drained_refusal}`);
  // A hand-over to a node chosen on the page.
  const chosen = (await status(nodes.find((url) => url !== third.url && url !== second.url))).id;
  // Once it campaigns again after its resign.
  const handOver = page.getByRole('button', { name: `Hand over to ${chosen}` });
  await handOver.waitFor();
  started = Date.now();
  await handOver.click();
  await leaderShown(chosen);
  seen.handover_ms = Date.now() - started;
  seen.handover_outcome = await outcome('done');
  check((await agreedLeader(third.id)).id === chosen, `${chosen} does not lead`);

  // 6. The history grew by the three hand-overs.
  if (historyAvailable) {
    await page.waitForFunction((n) => document.querySelectorAll('#history li').length >= n,
      historyBefore + 3, { timeout: WAIT });
    seen.history = { before: historyBefore, after: await historyLength() };
  } else {
    seen.history = null;
  }

  // 7. Drain and undrain this page's own node.
  const ownRow = page.locator('#candidates tbody tr', { hasText: 'this page' });
  await page.getByRole('button', { name: 'Drain this node' }).click();
  seen.drain_outcome = await outcome('done');
  await ownRow.locator('td[data-label="Drained"]', { hasText: 'yes' }).waitFor({ timeout: WAIT });
  await page.getByRole('button', { name: 'Undrain this node' }).click();
  await ownRow.locator('td[data-label="Drained"]', { hasText: 'no' }).waitFor({ timeout: WAIT });

  mkdirSync(shots, { recursive: true });
  seen.screenshots = [join(shots, 'electd-ui.png'), join(shots, 'electd-ui-phone.png')];
  await page.screenshot({ path: seen.screenshots[0], fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: seen.screenshots[1], fullPage: true });
  // On a phone, nothing is wider than the screen.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
  check(overflow <= 390, `the page is ${overflow} px wide on a 390 px screen`);
  await page.setViewportSize({ width: 1100, height: 1000 });

  // 8. Keyboard: the token field, the buttons and the links take focus in order.
  await page.locator('#token').focus();
  await page.keyboard.press('Tab');
  seen.after_token_tab = await page.evaluate(() => document.activeElement.id || document.activeElement.textContent);
  check(seen.after_token_tab === 'forget', `Tab from the token goes to ${seen.after_token_tab}`);

  // 9. A node with --admin-listen: its main port's page says where the
  // admin actions are, and the page there takes them.
  await page.goto(`${adminNode}/ui`);
  await leaderShown(chosen);
  await page.fill('#token', token);
  await page.getByRole('button', { name: 'Undrain this node' }).click();
  seen.admin_listener = await outcome('refused');
  check(seen.admin_listener.includes('admin listener'), `admin listener: ${seen.admin_listener}`);
  const adminPage = await page.locator('#outcome a').getAttribute('href');
  await page.goto(adminPage);
  await leaderShown(chosen);
  await page.fill('#token', token);
  await page.getByRole('button', { name: 'Undrain this node' }).click();
  await outcome('done');
  await page.getByRole('button', { name: 'Drain this node' }).click();
  seen.admin_port_outcome = await outcome('done');
  seen.problems = problems.slice();
  check(problems.length === 0, `the browser reported: ${problems.join('; ')}`);

  // 10. The node serving the page stops: the page says its stream broke.
  process.kill(adminPid, 'SIGTERM');
  started = Date.now();
  await page.locator('#stream.broken').waitFor({ timeout: WAIT });
  seen.broken_ms = Date.now() - started;
  seen.broken_notice = await text('#stream');
}

/** On --api v2: the leader only, nothing v3 alone can do, and the
 * history's absence said. */
async function v2(page, problems) {
  const leader = await agreedLeader();
  await page.goto(`${leader.url}/ui`);
  await leaderShown(leader.id);
  seen.leader_shown = leader.id;
  seen.rows = await page.locator('#candidates tbody tr').count();
  check(seen.rows === 1, `${seen.rows} rows on v2`);
  seen.candidates_note = await text('#candidates-note');
  check(seen.candidates_note.includes('v2 names the leader only'), `the note: ${seen.candidates_note}`);
  seen.healthy = await text('#candidates td[data-label="Healthy"]');
  check(seen.healthy === 'not known', `healthy on v2: ${seen.healthy}`);
  const handOvers = await page.getByRole('button', { name: /^Hand over/ }).count();
  check(handOvers === 0, `${handOvers} hand-over buttons on v2`);
  await page.getByRole('button', { name: /^Resign/ }).waitFor();
  seen.history = (await historyShown()) ? await text('#history-note') : null;
  check(problems.length === 0, `the browser reported: ${problems.join('; ')}`);
}

/** Each node's count on the page's legend, in its order: [[id, leads], …]. */
const legend = () => current.evaluate(() => [...document.querySelectorAll('#shard-nodes tbody tr')]
  .map((row) => [row.dataset.node, Number(row.querySelector('td[data-label="Leads"]').textContent)]));

/** Waits until the legend has the counts node `url`'s /v1/shards gives;
 * those counts. */
async function legendMatches(url) {
  const until = Date.now() + WAIT;
  for (;;) {
    const answer = await (await fetch(`${url}/v1/shards`)).json();
    const want = answer.nodes.map((n) => [n.id, n.leads]);
    if (JSON.stringify(await legend()) === JSON.stringify(want)) return { answer, counts: want };
    if (Date.now() > until) {
      throw new Error(`the legend shows ${JSON.stringify(await legend())}, /v1/shards ${JSON.stringify(want)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** With --shards: a cell per shard, the legend's counts those of
 * /v1/shards, and a dead node's shards in the recent moves. */
async function shards(page, problems) {
  const killPid = Number(env('ELECTD_UI_KILL_PID'));
  const killId = env('ELECTD_UI_KILL_ID');
  const shots = env('ELECTD_UI_SHOTS');
  await page.goto(`${nodes[0]}/ui`);
  await page.locator('#stream:not(.broken)').getByText('Live').waitFor({ timeout: WAIT });
  await page.locator('#shards-section').waitFor({ timeout: WAIT });
  const before = await legendMatches(nodes[0]);
  seen.count = before.answer.count;
  seen.cells = await page.locator('#shard-grid .shard').count();
  check(seen.cells === seen.count, `${seen.cells} cells for ${seen.count} shards`);
  seen.legend_before = before.counts;
  check(before.counts.some(([id]) => id === killId), `${killId} leads no shard: ${JSON.stringify(before.counts)}`);
  seen.candidates_listed = await page.locator('#candidates tbody tr').count();
  await page.evaluate(() => { window.sameDocument = true; });

  process.kill(killPid, 'SIGKILL');
  const started = Date.now();
  await page.waitForFunction((id) => [...document.querySelectorAll('#shard-moves li')]
    .some((li) => li.textContent.includes(`: ${id} → `)), killId, { timeout: WAIT, polling: 10 });
  seen.first_move_ms = Date.now() - started;
  await page.waitForFunction((id) => !document.querySelector(`#shard-nodes tr[data-node="${id}"]`)
    && document.querySelectorAll('#shard-grid .lead-none').length === 0, killId, { timeout: WAIT, polling: 10 });
  seen.all_moved_ms = Date.now() - started;
  seen.legend_after = (await legendMatches(nodes[0])).counts;
  seen.moves = await page.locator('#shard-moves li').allTextContents();
  check(await page.evaluate(() => window.sameDocument === true), 'the page was reloaded');

  mkdirSync(shots, { recursive: true });
  seen.screenshots = [join(shots, 'electd-ui-shards.png')];
  await page.screenshot({ path: seen.screenshots[0], fullPage: true });
  seen.problems = problems.slice();
  check(problems.length === 0, `the browser reported: ${problems.join('; ')}`);
}

const scenarios = { steer, obstacle, v2, shards };
const browser = await chromium.launch({
  executablePath: process.env.ELECTD_UI_CHROMIUM || '/usr/bin/chromium',
  // This machine's network is closed: nothing in the background.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 1000 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // Refusals are 4xx answers, which the browser logs too; what counts
    // is a script error or a blocked load (the policy's "Refused to …").
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource: the server responded')) {
      problems.push(`console: ${message.text()}`);
    }
  });
  current = page;
  if (!scenarios[scenario]) throw new Error(`no scenario ${scenario}`);
  await scenarios[scenario](page, problems);
} catch (error) {
  console.error(`ui: ${error.stack || error}`);
  console.error(`ui: seen so far: ${JSON.stringify(seen)}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
if (!process.exitCode) console.log(JSON.stringify(seen));
