// Server products and change requests (seed 002) in Debian's headless Chromium, against the real
// binary, through the page only: the seller scans an AMI, creates a product, adds an AMI version
// and a package version, releases to Limited; an allowlisted buyer builds the package into their
// own AMI; the seller's next version fails its scan (SCAN_ERROR, findings one click away), is
// fixed, a version is restricted (a second buyer can no longer build it), Public is requested and
// awaits review until the harness approves. Then the smaller cases: the empty state, a 423,
// paging past 50 products, a VALIDATE run, in-page validation, double submits, a bad secret.
// Screenshots go to target/console-screenshots/products-*.png.
'use strict';

const { test, before, after, afterEach } = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');
const support = require('./support');

const { SHOTS, KEY, SECRET, control, signIn } = support;
const ROLE = 'arn:aws:iam::123456789012:role/MarketplaceAmiIngestion';
const CLEAN = 'ami-0a1b2c3d4e5f60718';
const FIXED = 'ami-0c1ea00000000000b';
const VULNERABLE = 'ami-0a5ca0000000000a1';
const BUYER = { id: '210987654321', key: 'AKIABUYER00000000001', secret: 'buyer-one-secret-0000000000000000000000' };
const BUYER2 = { id: '444455556666', key: 'AKIABUYER00000000002', secret: 'buyer-two-secret-0000000000000000000000' };
const PAGER = { id: '555566667777', key: 'AKIAPAGER00000000001', secret: 'many-products-secret-00000000000000000' };
const BUYER2_AMI = 'ami-0b2b2000000000001';

let browser;
let endpoint;
let page;
let product;
let packageFo;
const offOrigin = [];
const pageErrors = [];

function accountsFile() {
  const account = (id, name, key, secret) => ({ AccountId: id, Principals: [{ Name: name, AccessKeys: [{ AccessKeyId: key, SecretAccessKey: secret }] }] });
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'imagebuild-products-')), 'accounts.json');
  fs.writeFileSync(file, JSON.stringify({
    Accounts: [account('123456789012', 'seller', KEY, SECRET), account(BUYER.id, 'buyer', BUYER.key, BUYER.secret),
      account(BUYER2.id, 'buyer', BUYER2.key, BUYER2.secret), account(PAGER.id, 'seller', PAGER.key, PAGER.secret)],
  }));
  return file;
}

async function shot(name) {
  await page.screenshot({ path: path.join(SHOTS, `products-${name}.png`), fullPage: true });
}

/** A page of the console; the API answers are `/` (awsJson) and `/<Operation>` (the Catalog API). */
async function newPage(key = KEY, secret = SECRET) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const p = await context.newPage();
  const isApi = (url) => { const u = new URL(url); return u.pathname === '/' || /^\/[A-Z]\w+$/.test(u.pathname); };
  support.watch(p, endpoint, { offOrigin, pageErrors, isApi });
  await p.goto(`${endpoint}/console/`);
  await signIn(p, key, secret);
  await p.getByRole('link', { name: 'Server products' }).waitFor();
  return p;
}

async function as(account) {
  if (page) await page.context().close();
  page = account ? await newPage(account.key, account.secret) : await newPage();
}

/** Steps a change set (transitions are manual here) until it ends; scans and test builds run by themselves. */
async function finish(id, until = (s) => ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(s)) {
  for (let i = 0; i < 200; i += 1) {
    const r = await control(endpoint, 'POST', 'advance', { ChangeSetId: id, Steps: 3 }).catch(() => ({ Status: 'ENDED' }));
    if (r.Status === 'ENDED' || until(r.Status)) return r.Status;
    await new Promise((res) => setTimeout(res, 150));
  }
  throw new Error(`change set ${id} did not end`);
}

/** The change request the page shows (after a submit), seen PREPARING, stepped to its end, then read on screen. */
async function submitted(expected) {
  await page.getByRole('heading', { name: 'Changes', exact: true }).waitFor();
  const id = (await page.locator('#change-set-id').textContent()).trim();
  await page.locator('#change-status').getByText('Preparing').waitFor();
  await finish(id);
  await page.locator('#change-status').getByText(expected).waitFor({ timeout: 20000 });
  return id;
}

async function openProduct() {
  await page.goto(`${endpoint}/console/#/products/${product}`);
  await page.getByRole('heading', { name: 'Versions' }).waitFor();
}

async function requestChange(name) {
  await openProduct();
  await page.getByRole('region', { name: 'Request changes' }).getByRole('link', { name, exact: true }).click();
  await page.getByRole('heading', { name, level: 2 }).waitFor();
}

async function fillAmiVersion(title, ami, user) {
  await page.getByLabel('Version title').fill(title);
  await page.getByLabel('Release notes').fill(`Release ${title}`);
  await page.getByLabel('AMI', { exact: true }).selectOption(ami);
  await page.getByLabel('IAM access role ARN').fill(ROLE);
  await page.getByLabel('OS user name').fill(user);
  await page.getByLabel('Operating system name').fill(user === 'ubuntu' ? 'UBUNTU' : 'AMAZONLINUX');
  await page.getByLabel('Operating system version').fill(user === 'ubuntu' ? '22.04' : '2023');
  await page.getByLabel('Usage instructions').first().fill(`ssh ${user}@<host>`);
}

/** Change sets of the signed-in account, read through the page's own signed call. */
function changeSetCount() {
  return page.evaluate(async () => {
    const { catalog } = await import('/console/lib.js');
    return (await catalog('ListChangeSets', { body: { MaxResults: 20 } })).ChangeSetSummaryList.length;
  });
}

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  endpoint = await support.startServer('--accounts', accountsFile(), '--provision-seconds', '0', '--install-seconds', '0',
    '--imaging-seconds', '0', '--ingest-seconds', '1', '--scan-seconds', '1');
  await control(endpoint, 'POST', 'transitions', { Resource: 'changeset', Mode: 'manual' });
  const world = await (await fetch(`${endpoint}/_imagebuild/world`)).json();
  const clean = world.Images.find((i) => i.ImageId === CLEAN && i.Region === 'us-east-1');
  const many = Array.from({ length: 55 }, (_, n) => ({
    ProductId: `prod-pager${String(n).padStart(8, '0')}`, ProductCode: `pagercode${String(n).padStart(16, '0')}`,
    SellerAccountId: PAGER.id, Title: `Paged product ${String(n).padStart(2, '0')}`, Visibility: 'Limited',
    Versions: [{ Version: '1.0', FulfillmentOptionId: `fo-pager${String(n).padStart(8, '0')}`, Platform: 'Linux', Regions: ['us-east-1'] }],
  }));
  await control(endpoint, 'PATCH', 'world', {
    Images: [{ ...clean, ImageId: FIXED, Name: 'Web app 1.3 - fixed' },
      { ...clean, ImageId: BUYER2_AMI, OwnerId: BUYER2.id, Name: 'Second buyer image' }],
    Products: many,
  });
  browser = await support.launch();
});

// Each test's last page, so a failure can be seen as the page showed it.
afterEach(async (t) => {
  if (page) await shot(`last-${t.name.slice(0, 30).replace(/\W+/g, '-')}`).catch(() => {});
});

after(async () => {
  if (browser) await browser.close();
  support.stopServers();
});

test('an account without products sees the empty state and its call to action', async () => {
  await as(BUYER2);
  await page.getByRole('link', { name: 'Server products', exact: true }).click();
  await page.getByRole('heading', { name: 'No server products yet' }).waitFor();
  await page.getByRole('link', { name: 'Create product' }).first().waitFor();
  await shot('00-empty');
});

test('the seller-to-buyer journey, through the page only', async () => {
  await as(null);
  // 1. Add AMI: the scan succeeds
  await page.goto(`${endpoint}/console/#/amis/add`);
  await page.getByLabel(CLEAN).check();
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByLabel('IAM access role ARN').fill(ROLE);
  await page.getByLabel('OS user name').fill('ubuntu');
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByRole('button', { name: 'Submit' }).click();
  await page.locator('td .badge', { hasText: 'Succeeded' }).waitFor({ timeout: 20000 });

  // 2. create the product and give it its information
  await page.getByRole('link', { name: 'Server products', exact: true }).click();
  await page.getByRole('link', { name: 'Create product' }).click();
  await page.getByRole('button', { name: 'Create product' }).click();
  await page.getByText('Enter the product title.').waitFor();
  await page.getByLabel('Product title').fill('Example Agent');
  await page.getByRole('button', { name: 'Create product' }).click();
  await submitted('Succeeded');
  await shot('01-created');
  await page.getByRole('link', { name: 'Open the new product' }).click();
  await page.getByRole('heading', { name: 'Example Agent' }).waitFor();
  product = (await page.locator('#product-id').textContent()).trim();
  assert.match(product, /^prod-[a-z0-9]{13}$/);
  await page.locator('.page-head .badge', { hasText: 'Staging' }).waitFor();
  await page.getByRole('link', { name: 'Update product information' }).click();
  await page.getByLabel('Short description').fill('An agent.');
  await page.getByLabel('Long description').fill('An agent for servers.');
  await page.getByLabel('Logo URL').fill('https://example.com/logo.png');
  await page.getByLabel('Highlights').fill('Fast');
  await page.getByLabel('Categories').fill('Operating Systems');
  await page.getByLabel('Search keywords').fill('agent');
  await page.getByLabel('Support information').fill('support@example.com');
  await page.getByRole('button', { name: 'Submit request' }).click();
  await submitted('Succeeded');

  // 3. version 1.0.0 from the scanned AMI, 1.0.0-pkg from a package
  await requestChange('Add version');
  await page.getByLabel('AMI', { exact: true }).locator('option', { hasText: 'latest scan: Succeeded' }).first().waitFor({ state: 'attached' });
  await fillAmiVersion('1.0.0', CLEAN, 'ubuntu');
  await shot('02-add-ami-version');
  await page.getByRole('button', { name: 'Add version', exact: true }).click();
  await submitted('Succeeded');
  await requestChange('Add version');
  await page.getByLabel('Version title').fill('1.0.0-pkg');
  await page.getByLabel('Release notes').fill('The agent as a package');
  await page.getByLabel(/A software package/).check();
  await page.getByLabel('Package group name').fill('agent-1_0_0');
  await page.getByLabel('Installer URL').fill('s3://demo-seller-packages/agent-1.0.0.rpm');
  await page.getByLabel('Installer type').selectOption('.rpm');
  await shot('03-add-package-version');
  await page.getByRole('button', { name: 'Add version', exact: true }).click();
  await submitted('Succeeded');

  // 4. allowlist and release to Limited
  await requestChange('Update allowlist');
  await page.getByLabel('Buyer AWS account IDs').fill(`${BUYER.id}\n${BUYER2.id}`);
  await page.getByRole('button', { name: 'Submit request' }).click();
  await submitted('Succeeded');
  await requestChange('Release to Limited');
  await page.getByText('Ready to release').waitFor();
  await page.getByRole('button', { name: 'Release to Limited' }).click();
  await submitted('Succeeded');
  await openProduct();
  await page.locator('.page-head .badge', { hasText: 'Limited' }).waitFor();
  await page.locator('#allowlist', { hasText: BUYER.id }).waitFor();
  assert.strictEqual(await page.locator('#versions-table tbody tr').count(), 2);
  await page.locator('#versions-table tr[data-version="1.0.0"]').getByText('Launched by buyers, not built').waitFor();
  const buildLink = await page.getByRole('link', { name: 'Build with 1.0.0-pkg' }).getAttribute('href');
  packageFo = new URLSearchParams(buildLink.split('?')[1]).get('fo');
  assert.match(packageFo, /^fo-/);
  await shot('04-product-limited');

  // 5. the allowlisted buyer builds the package into their own AMI
  await as(BUYER);
  await page.goto(`${endpoint}/console/${buildLink}`);
  await page.getByRole('heading', { name: 'Build with version 1.0.0-pkg' }).waitFor();
  assert.strictEqual(await page.getByLabel('Fulfillment option ID').inputValue(), packageFo);
  await page.getByLabel('Source AMI', { exact: true }).selectOption('ami-01a2b3c4d5e6f7081');
  await page.getByRole('button', { name: 'Start build' }).click();
  await page.locator('#build-status').getByText('Succeeded').waitFor({ timeout: 20000 });
  await page.locator('#build-logs').getByRole('link', { name: 'stdout' }).waitFor();
  await page.getByText('Example Agent 1.0.0-pkg').waitFor();
  await shot('05-buyer-build');

  // 6. the seller's 1.1.0 fails its scan; the findings are one click away
  await as(null);
  await requestChange('Add version');
  await fillAmiVersion('1.1.0', VULNERABLE, 'ec2-user');
  await page.getByRole('button', { name: 'Add version', exact: true }).click();
  await submitted('Failed');
  await page.getByText('Failed (CLIENT_ERROR)').waitFor();
  await page.locator('ul.errors code', { hasText: 'SCAN_ERROR' }).first().waitFor();
  await shot('06-change-request-failed');
  await page.getByRole('link', { name: 'View the findings of the scan' }).first().click();
  await page.getByText('Scanning issues found').waitFor();
  assert.ok(await page.locator('table.findings tbody tr').count() >= 1);
  await shot('07-scan-findings');

  // 7. fixed with a clean AMI; then 1.0.0-pkg is restricted
  await requestChange('Add version');
  await fillAmiVersion('1.1.0', FIXED, 'ubuntu');
  await page.getByRole('button', { name: 'Add version', exact: true }).click();
  await submitted('Succeeded');
  await requestChange('Restrict version');
  await page.getByLabel(/^1\.0\.0-pkg/).check();
  await page.getByRole('button', { name: 'Submit request' }).click();
  await submitted('Succeeded');
  await openProduct();
  await page.locator('#versions-table tr[data-version="1.0.0-pkg"] .badge', { hasText: 'Restricted' }).waitFor();

  // 8. a second allowlisted buyer can no longer build the restricted version
  await as(BUYER2);
  await page.goto(`${endpoint}/console/${buildLink}`);
  await page.getByLabel('Source AMI', { exact: true }).selectOption(BUYER2_AMI);
  await page.getByRole('button', { name: 'Start build' }).click();
  await page.getByText('The build could not start').waitFor();
  await page.getByText('(InvalidFulfillmentOptionIdException)').waitFor();

  // 9. Public awaits the Seller Operations review until the harness approves
  await as(null);
  await control(endpoint, 'PUT', 'review', { Outcome: 'Hold' });
  await requestChange('Request Public or Restricted');
  await page.getByLabel('New visibility').selectOption('Public');
  await page.getByRole('button', { name: 'Request visibility change' }).click();
  await page.getByRole('heading', { name: 'Changes', exact: true }).waitFor();
  const id = (await page.locator('#change-set-id').textContent()).trim();
  await finish(id, (s) => s === 'APPLYING');
  await page.getByText('Awaiting review').waitFor({ timeout: 20000 });
  await shot('08-awaiting-review');
  await control(endpoint, 'PUT', 'review', { Outcome: 'Approve' });
  await finish(id);
  await page.locator('#change-status').getByText('Succeeded').waitFor({ timeout: 20000 });
  await openProduct();
  await page.locator('.page-head .badge', { hasText: 'Public' }).waitFor();
  await page.getByRole('link', { name: 'Server products', exact: true }).click();
  await page.locator('#products-table tr', { hasText: product }).locator('.badge', { hasText: 'Public' }).waitFor();
  await shot('09-products');
  await page.getByRole('link', { name: 'Change requests' }).click();
  await page.locator('table.change-sets tbody tr').first().waitFor();
  assert.ok(await page.locator('table.change-sets tbody tr').count() >= 10);
  await shot('10-change-requests');
});

test('a second change request while one is in progress reads as such, with a link to it', async () => {
  await requestChange('Update allowlist');
  await page.getByLabel('Buyer AWS account IDs').fill(BUYER.id);
  await page.getByRole('button', { name: 'Submit request' }).click();
  await page.locator('#change-status').getByText('Preparing').waitFor();
  const first = (await page.locator('#change-set-id').textContent()).trim();
  await requestChange('Add or restrict regions');
  await page.getByLabel('eu-west-1').check();
  await page.getByRole('button', { name: 'Submit request' }).click();
  await page.getByText('Another change request is in progress').waitFor();
  await page.getByRole('link', { name: `View change request ${first}` }).waitFor();
  await shot('11-locked');
  await page.getByRole('link', { name: `View change request ${first}` }).click();
  await page.getByRole('button', { name: 'Cancel change request' }).click();
  await page.locator('#change-status').getByText('Cancelled').waitFor();
});

test('a VALIDATE run tests a version and changes nothing', async () => {
  await openProduct();
  const before = await page.locator('#versions-table tbody tr').count();
  await requestChange('Add version');
  await fillAmiVersion('2.0.0', FIXED, 'ubuntu');
  await page.getByRole('button', { name: 'Test add version' }).click();
  await page.getByText('Test only (VALIDATE)').waitFor();
  await submitted('Succeeded');
  await page.getByText('The test passed').waitFor();
  await openProduct();
  assert.strictEqual(await page.locator('#versions-table tbody tr').count(), before);
  assert.strictEqual(await page.locator('#versions-table tr[data-version="2.0.0"]').count(), 0);
});

test('bad input is caught in the page and sends nothing; a double submit makes one change request', async () => {
  const count = await changeSetCount();
  await requestChange('Add version');
  await page.getByLabel('Version title').fill('1.0.0');
  await page.getByLabel('IAM access role ARN').fill('not-a-role');
  await page.getByLabel('Scanning port').fill('70000');
  await page.getByRole('button', { name: 'Add version', exact: true }).click();
  await page.getByText('The version title must be different from any other version titles of this product.').waitFor();
  await page.getByText('Enter an IAM role ARN such as').waitFor();
  await page.getByText('The scanning port must be a whole number from 1 to 65535.').waitFor();
  assert.strictEqual(await page.getByLabel('Scanning port').getAttribute('aria-invalid'), 'true');
  await shot('12-validation');
  assert.strictEqual(await changeSetCount(), count, 'nothing was sent');

  await requestChange('Update allowlist');
  await page.getByLabel('Buyer AWS account IDs').fill(`${BUYER.id}, 12345`);
  await page.getByRole('button', { name: 'Submit request' }).click();
  await page.getByText('"12345" is not a 12-digit AWS account ID.').waitFor();
  await page.getByLabel('Buyer AWS account IDs').fill(BUYER.id);
  await page.evaluate(() => {
    const form = document.querySelector('form.card');
    form.requestSubmit();
    form.requestSubmit();
  });
  await page.locator('#change-status').waitFor();
  await new Promise((res) => setTimeout(res, 500));
  assert.strictEqual(await changeSetCount(), count + 1, 'one change request for two submits');
  await finish((await page.locator('#change-set-id').textContent()).trim());
});

test('the service naming a field puts its answer next to that field', async () => {
  const placed = await page.evaluate(async () => {
    const { fieldOf, lockedBy } = await import('/console/lib.js');
    return [
      fieldOf('ChangeSet[0].Details: AddDeliveryOptions: #/DeliveryOptions/0/Details/AmiDeliveryOptionDetails/AmiSource/AmiId: string [x] does not match pattern'),
      fieldOf('ChangeSet[0].Details: AddDeliveryOptions: #/DeliveryOptions/0/Details/AmiDeliveryOptionDetails: required key [UsageInstructions] not found'),
      fieldOf('ChangeSet[0].Entity.Identifier: The entity was not found.'),
      lockedBy("Requested change set has entities locked by change sets - entity: 'prod-x'  change sets: 1nhjeo6fvc3s81vfoejyq8cwq"),
    ];
  });
  assert.deepStrictEqual(placed, ['AmiId', 'UsageInstructions', null, '1nhjeo6fvc3s81vfoejyq8cwq']);
  // A real refusal: the product changed after the form was opened, so its revision is stale.
  await requestChange('Update allowlist');
  await page.evaluate(async (id) => {
    const { catalog } = await import('/console/lib.js');
    await catalog('StartChangeSet', { body: { ChangeSet: [{ ChangeType: 'AddRegions', Entity: { Type: 'AmiProduct@1.0', Identifier: id }, DetailsDocument: { Regions: ['eu-west-2'] } }] } });
  }, product);
  const ids = await page.evaluate(async () => {
    const { catalog } = await import('/console/lib.js');
    return (await catalog('ListChangeSets', { body: { MaxResults: 1, Sort: { SortBy: 'StartTime', SortOrder: 'DESCENDING' } } })).ChangeSetSummaryList.map((s) => s.ChangeSetId);
  });
  await finish(ids[0]);
  await page.getByLabel('Buyer AWS account IDs').fill(BUYER2.id);
  await page.getByRole('button', { name: 'Submit request' }).click();
  await page.getByText('is not the latest').waitFor();
  await page.getByRole('link', { name: 'The product changed meanwhile: reload it' }).waitFor();
});

test('paging past 50 products with the API\'s own paging', async () => {
  await as(PAGER);
  await page.getByRole('link', { name: 'Server products', exact: true }).click();
  const rows = page.locator('#products-table tbody tr');
  await rows.first().waitFor();
  assert.strictEqual(await rows.count(), 20);
  await page.getByRole('link', { name: 'Next page' }).click();
  await page.getByText('Page 2').waitFor();
  assert.strictEqual(await rows.count(), 20);
  await page.getByRole('link', { name: 'Next page' }).click();
  await page.getByText('Page 3').waitFor();
  assert.strictEqual(await rows.count(), 15);
  assert.strictEqual(await page.getByRole('link', { name: 'Next page' }).count(), 0);
  await page.getByRole('link', { name: 'Previous page' }).click();
  await page.getByText('Page 2').waitFor();
  await page.getByRole('link', { name: 'Restricted' }).click();
  await page.getByText('No products match.').waitFor();
  await page.getByLabel('Search by title').fill('product 07');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByText('No products match.').waitFor();
  await page.getByRole('link', { name: 'All', exact: true }).click();
  await page.locator('#products-table tbody tr', { hasText: 'Paged product 07' }).waitFor();
  assert.strictEqual(await rows.count(), 1);
});

test('the product page and its forms work at 390 px wide and by keyboard', async () => {
  await as(null);
  await page.setViewportSize({ width: 390, height: 900 });
  await openProduct();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `page is ${overflow}px wider than the viewport`);
  await shot('13-product-390px');
  await page.getByRole('region', { name: 'Request changes' }).getByRole('link', { name: 'Update allowlist', exact: true }).focus();
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Update allowlist', level: 1 }).waitFor();
  await page.getByLabel('Buyer AWS account IDs').focus();
  await page.keyboard.press('Control+A');
  await page.keyboard.type('1234');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  await page.getByText('"1234" is not a 12-digit AWS account ID.').waitFor();
  assert.strictEqual(await page.evaluate(() => document.activeElement.id), 'allowlist-accounts', 'focus goes to the wrong field');
});

test('a page left before its answers arrive never replaces the page opened next', async () => {
  await as(null);
  await control(endpoint, 'PUT', 'faults', { Rules: [{ Operation: 'DescribeScans', LatencyMs: 1500 }] });
  try {
    await page.goto(`${endpoint}/console/#/builds`);
    await page.getByRole('heading', { name: 'Builds', level: 1 }).waitFor();
    await page.getByRole('link', { name: 'Manage AMIs', exact: true }).click();
    await page.getByRole('link', { name: 'Change requests', exact: true }).click();
    await page.getByRole('heading', { name: 'Change requests', level: 1 }).waitFor();
    await new Promise((res) => setTimeout(res, 2000));
    assert.strictEqual(await page.getByRole('heading', { level: 1 }).textContent(), 'Change requests');
  } finally {
    await control(endpoint, 'PUT', 'faults', { Rules: [] });
  }
});

test('a wrong secret on the Catalog paths sends back to sign-in with a readable message', async () => {
  await page.evaluate(() => {
    const c = JSON.parse(sessionStorage.getItem('imagebuild.credentials'));
    sessionStorage.setItem('imagebuild.credentials', JSON.stringify({ ...c, secretAccessKey: 'not-the-secret' }));
  });
  await page.goto(`${endpoint}/console/#/changes?status=FAILED`);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.getByText('The signature does not match').waitFor();
});

test('no request left the service origin and no script error happened', () => {
  assert.deepStrictEqual(offOrigin, []);
  assert.deepStrictEqual(pageErrors, []);
});
