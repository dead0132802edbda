// The AWS SDK for JavaScript v2's own `AWS.MarketplaceCatalog` client (its model ships in the
// SDK), unchanged but for the endpoint: one change set to SUCCEEDED, the entity described, and a
// modeled error with its restJson status.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const path = require('node:path');
const AWS = require('aws-sdk');

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = process.env.IMAGEBUILD_BIN || path.join(ROOT, 'target', 'debug', 'imagebuild');

let server;
let catalog;

before(async () => {
  server = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--in-memory', '--change-set-seconds', '0',
    '--ingest-seconds', '0', '--scan-seconds', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const endpoint = await new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${log}`)), 30000);
    server.stderr.on('data', (chunk) => {
      log += chunk;
      const m = /listening on (http:\/\/[0-9.]+:\d+)/.exec(log);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
  });
  catalog = new AWS.MarketplaceCatalog({
    endpoint,
    region: 'us-east-1',
    credentials: new AWS.Credentials('AKIAIOSFODNN7EXAMPLE', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'),
    maxRetries: 0,
  });
});

after(() => { if (server) server.kill('SIGTERM'); });

async function ended(id) {
  for (let i = 0; i < 200; i += 1) {
    const d = await catalog.describeChangeSet({ Catalog: 'AWSMarketplace', ChangeSetId: id }).promise();
    if (!['PREPARING', 'APPLYING'].includes(d.Status)) return d;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${id} did not end`);
}

test('a change set to SUCCEEDED and the entity it made', async () => {
  const started = await catalog.startChangeSet({
    Catalog: 'AWSMarketplace',
    ChangeSetName: 'js sdk',
    ChangeSet: [
      { ChangeType: 'CreateProduct', ChangeName: 'Create', Entity: { Type: 'AmiProduct@1.0' }, Details: JSON.stringify({ ProductTitle: 'JS product' }) },
      { ChangeType: 'AddRegions', Entity: { Type: 'AmiProduct@1.0', Identifier: '$Create.Entity.Identifier' }, DetailsDocument: { Regions: ['us-east-1'] } },
    ],
  }).promise();
  assert.match(started.ChangeSetId, /^[a-z0-9]{25}$/);
  const d = await ended(started.ChangeSetId);
  assert.strictEqual(d.Status, 'SUCCEEDED');
  assert.strictEqual(d.ChangeSetName, 'js sdk');
  assert.match(d.StartTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'DateTimeISO8601 is a 20-character string');
  const id = d.ChangeSet[0].Entity.Identifier.split('@')[0];
  const e = await catalog.describeEntity({ Catalog: 'AWSMarketplace', EntityId: id }).promise();
  assert.strictEqual(e.EntityType, 'AmiProduct@1.0');
  assert.strictEqual(e.DetailsDocument.Description.ProductTitle, 'JS product');
  assert.deepStrictEqual(e.DetailsDocument.RegionAvailability.Regions, ['us-east-1']);
  assert.deepStrictEqual(JSON.parse(e.Details), e.DetailsDocument);
  const listed = await catalog.listEntities({ Catalog: 'AWSMarketplace', EntityType: 'AmiProduct' }).promise();
  assert.ok(listed.EntitySummaryList.some((x) => x.EntityId === id));
  assert.strictEqual(listed.NextToken, undefined);
});

test('a modeled error arrives with its code and status', async () => {
  await assert.rejects(
    catalog.describeEntity({ Catalog: 'AWSMarketplace', EntityId: 'prod-nothere000001' }).promise(),
    (err) => err.code === 'ResourceNotFoundException' && err.statusCode === 404,
  );
  await assert.rejects(
    catalog.startChangeSet({ Catalog: 'AWSMarketplace', ChangeSet: [{ ChangeType: 'AddRegions', Entity: { Type: 'AmiProduct@1.0', Identifier: 'prod-x' }, Details: 'nope' }] }).promise(),
    (err) => err.code === 'ValidationException' && err.statusCode === 422 && /Details/.test(err.message),
  );
});
