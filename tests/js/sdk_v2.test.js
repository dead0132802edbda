// The AWS SDK for JavaScript v2, unchanged, against the real binary: the service is built from
// the shipped botocore model (`new AWS.Service({apiConfig})`), with its paginator and waiter.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const path = require('node:path');
const fs = require('node:fs');
const AWS = require('aws-sdk');

const ROOT = path.resolve(__dirname, '..', '..');
const MODEL_DIR = path.join(ROOT, 'models', 'marketplaceimagebuild', '2017-12-15');
const BIN = process.env.IMAGEBUILD_BIN || path.join(ROOT, 'target', 'debug', 'imagebuild');

let server;
let client;

function load(name) {
  return JSON.parse(fs.readFileSync(path.join(MODEL_DIR, name), 'utf8'));
}

before(async () => {
  server = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--in-memory',
    '--provision-seconds', '0', '--install-seconds', '0', '--imaging-seconds', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const endpoint = await new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error('server did not start: ' + log)), 30000);
    server.stderr.on('data', (chunk) => {
      log += chunk;
      const m = /listening on (http:\/\/[0-9.]+:\d+)/.exec(log);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
  });
  const apiConfig = load('service-2.json');
  apiConfig.paginators = load('paginators-1.json').pagination;
  apiConfig.waiters = load('waiters-2.json').waiters;
  client = new AWS.Service({
    apiConfig,
    endpoint,
    region: 'us-east-1',
    credentials: new AWS.Credentials('AKIAIOSFODNN7EXAMPLE', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'),
    maxRetries: 0,
  });
});

after(() => { if (server) server.kill('SIGTERM'); });

test('StartBuild, waiter, DescribeBuilds', async () => {
  const started = await client.startBuild({
    FulfillmentOptionIds: ['fo-ids4xf7qagwyc'],
    SourceImageId: 'ami-0a1b2c3d4e5f60718',
    DestinationImageName: 'js sdk image',
  }).promise();
  assert.match(started.BuildId, /^[0-9a-f-]{36}$/);
  assert.deepStrictEqual(started.Products, [{ Id: 'prod-abcd1234efgh5', Version: '1.0.0', Title: 'Example Agent' }]);
  const waited = await client.waitFor('buildCompleted', { BuildIds: [started.BuildId], $waiter: { delay: 1, maxAttempts: 20 } }).promise();
  assert.strictEqual(waited.Builds[0].Status, 'Succeeded');
  const described = await client.describeBuilds({ BuildIds: [started.BuildId] }).promise();
  const build = described.Builds[0];
  assert.strictEqual(build.Status, 'Succeeded');
  assert.match(build.DestinationImage.Id, /^ami-[0-9a-f]{17}$/);
  assert.ok(build.StartTime instanceof Date, 'timestamps are parsed into Dates');
});

test('a modeled error reaches the SDK with its code', async () => {
  await assert.rejects(
    client.describeBuilds({ Filters: [{ Name: 'colour', Values: ['x'] }] }).promise(),
    (err) => err.code === 'InvalidFilterException' && err.statusCode === 400
      && /The filter 'colour' is not valid/.test(err.message),
  );
  await assert.rejects(
    client.startBuild({ FulfillmentOptionIds: ['fo-demowin001'], SourceImageId: 'ami-0a1b2c3d4e5f60718', DestinationImageName: 'js image' }).promise(),
    (err) => err.code === 'InstallerMismatchException',
  );
});

test('pagination with NextToken', async () => {
  for (let i = 0; i < 3; i += 1) {
    await client.startBuild({ FulfillmentOptionIds: ['fo-ids4xf7qagwyc'], SourceImageId: 'ami-0a1b2c3d4e5f60718', DestinationImageName: `page ${i}` }).promise();
  }
  const first = await client.describeBuilds({ MaxResults: 2 }).promise();
  assert.strictEqual(first.Builds.length, 2);
  assert.ok(first.NextToken);
  const second = await client.describeBuilds({ MaxResults: 2, NextToken: first.NextToken }).promise();
  assert.strictEqual(second.Builds.length, 2);
  assert.strictEqual(second.NextToken, undefined);
});
