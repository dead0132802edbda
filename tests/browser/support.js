// What the console's browser tests share: the real binary started on a free port, the control
// plane, a page watched for off-origin requests and script errors, and sign-in.
'use strict';

const { spawn } = require('node:child_process');
const path = require('node:path');
const assert = require('node:assert');
const { chromium } = require('playwright-core');

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = process.env.IMAGEBUILD_BIN || path.join(ROOT, 'target', 'debug', 'imagebuild');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const SHOTS = path.join(ROOT, 'target', 'console-screenshots');
const TOKEN = 'browser-control-token';
const KEY = 'AKIAIOSFODNN7EXAMPLE';
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

const servers = [];

/** Starts `imagebuild serve` (in memory, with the control token) and resolves to its URL. */
function startServer(...extra) {
  const proc = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--in-memory', '--control-token', TOKEN, ...extra],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  servers.push(proc);
  return new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${log}`)), 30000);
    proc.stderr.on('data', (chunk) => {
      log += chunk;
      const m = /listening on (http:\/\/[0-9.]+:\d+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
}

function stopServers() {
  for (const s of servers) s.kill('SIGTERM');
}

async function control(endpoint, method, p, body) {
  const r = await fetch(`${endpoint}/_imagebuild/${p}`, {
    method, headers: { 'x-imagebuild-control-token': TOKEN }, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  assert.ok(r.ok, `${method} ${p}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : {};
}

function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

/**
 * Records what a page must never do: requests leaving the service's origin (into `offOrigin`),
 * script errors and failed requests other than API answers the page asked for and handles
 * (into `pageErrors`). `isApi(url)` says which paths are the API's.
 */
function watch(p, endpoint, { offOrigin, pageErrors, isApi }) {
  const origin = new URL(endpoint).origin;
  p.on('request', (req) => {
    if (!req.url().startsWith(origin) && !req.url().startsWith('data:')) offOrigin.push(req.url());
  });
  p.on('pageerror', (e) => pageErrors.push(String(e)));
  p.on('console', (m) => {
    if (m.type() !== 'error') return;
    const handledApiAnswer = /status of 4\d\d/.test(m.text()) && isApi(m.location().url || origin);
    if (!handledApiAnswer) pageErrors.push(`${m.text()} (${m.location().url})`);
  });
  p.on('response', (r) => {
    if (r.status() >= 400 && !isApi(r.url())) pageErrors.push(`${r.status()} ${r.request().method()} ${r.url()}`);
  });
  p.on('requestfailed', (r) => {
    // A poll cut short by navigating away is the browser's doing, not a failure.
    if (r.failure()?.errorText !== 'net::ERR_ABORTED') pageErrors.push(`failed ${r.url()}: ${r.failure()?.errorText}`);
  });
}

async function signIn(p, key = KEY, secret = SECRET) {
  await p.getByLabel('Access key ID').fill(key);
  await p.getByLabel('Secret access key').fill(secret);
  await p.getByRole('button', { name: 'Sign in' }).click();
}

module.exports = { ROOT, SHOTS, TOKEN, KEY, SECRET, startServer, stopServers, control, launch, watch, signIn };
