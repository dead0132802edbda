// The Manage AMIs console in Debian's headless Chromium, driven by playwright-core against the
// real binary: sign-in (and its readable failures), the empty state, the four-step Add AMI wizard
// with 3 AMIs, the 25-AMI limit, an ingestion issue fixed by resubmitting with a good role,
// findings, a failed scan resubmitted until the "contact Marketplace" path shows, a build followed
// to Succeeded, both widths, keyboard use, and no request leaving the service's origin.
// Screenshots of each step go to target/console-screenshots/.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const fs = require('node:fs');
const support = require('./support');

const { SHOTS, KEY, SECRET, control, signIn } = support;
const ROLE = 'arn:aws:iam::123456789012:role/MarketplaceAmiIngestion';
const VULNERABLE = 'ami-0a5ca0000000000a1';
const EXEMPTED = 'ami-0a5ca0000000000a2';
const PORT_2222 = 'ami-0a5ca0000000000a5';
const CLEAN = 'ami-0a1b2c3d4e5f60718';

let browser;
let main;
let page;
const offOrigin = [];
const pageErrors = [];

function startServer(...extra) {
  return support.startServer('--ingest-seconds', '3600', '--scan-seconds', '3600', ...extra);
}

async function shot(name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

async function newPage(endpoint, width = 1280) {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  const p = await context.newPage();
  // The only failures a page may show are API answers it asked for and handles (the tests
  // provoke them: wrong secret, clock skew, modeled errors); anything else, a missing asset or
  // icon among them, fails the test.
  support.watch(p, endpoint, { offOrigin, pageErrors, isApi: (url) => new URL(url).pathname === '/' });
  await p.goto(`${endpoint}/console/`);
  return p;
}

async function scanIdOf(imageId) {
  const row = page.locator('tr', { has: page.locator('code', { hasText: imageId }) });
  const href = await row.getByRole('link', { name: 'View details' }).getAttribute('href');
  return href.replace('#/scans/', '');
}

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  main = await startServer('--provision-seconds', '0', '--install-seconds', '0', '--imaging-seconds', '0');
  await control(main, 'POST', 'transitions', { Resource: 'scan', Mode: 'manual' });
  browser = await support.launch();
});

after(async () => {
  if (browser) await browser.close();
  support.stopServers();
});

test('wrong credentials and a skewed clock are readable messages, never a blank page', async () => {
  page = await newPage(main);
  await signIn(page, 'AKIAUNKNOWNKEY000000', SECRET);
  await assert.doesNotReject(page.getByRole('alert').getByText('The access key ID is not known').waitFor());
  await signIn(page, KEY, 'not-the-secret');
  await page.getByText('The signature does not match').waitFor();
  await shot('00-sign-in-error');
  const skewed = await startServer('--clock-offset-seconds', '900');
  const other = await newPage(skewed);
  await signIn(other);
  await other.getByText("Your computer's clock and the service's differ by more than 5 minutes").waitFor();
  await other.context().close();
});

test('sign in with the keyboard, then the empty state with its Add AMI call to action', async () => {
  await page.getByLabel('Access key ID').focus();
  await page.keyboard.press('Control+A');
  await page.keyboard.type(KEY);
  await page.keyboard.press('Tab');
  await page.keyboard.press('Control+A');
  await page.keyboard.type(SECRET);
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notStrictEqual(outline, 'none', 'the focused field shows its focus');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'No AMIs shared with AWS Marketplace yet' }).waitFor();
  assert.strictEqual(await page.evaluate(() => sessionStorage.getItem('imagebuild.credentials') !== null), true);
  assert.strictEqual(await page.evaluate(() => localStorage.length), 0, 'nothing in local storage');
  await shot('01-empty-state');
});

test('the Add AMI wizard with 3 AMIs, then statuses change without a reload', async () => {
  await page.getByRole('link', { name: 'Add AMI' }).first().click();
  await page.getByRole('heading', { name: 'Select AMIs' }).waitFor();
  for (const id of [VULNERABLE, EXEMPTED, PORT_2222]) await page.getByLabel(id).check();
  await page.getByText('3 of 25 AMIs selected').waitFor();
  await shot('02-wizard-select');
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByLabel('IAM access role ARN').fill('not-an-arn');
  assert.strictEqual(await page.getByLabel('Scanning port').inputValue(), '22');
  assert.strictEqual(await page.getByLabel('OS user name').inputValue(), 'ec2-user');
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByText('Enter an IAM role ARN such as').waitFor();
  await page.getByLabel('IAM access role ARN').fill(ROLE);
  await shot('03-wizard-details');
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByLabel('Product ID').fill('prod-demoseller1');
  await shot('04-wizard-product');
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByRole('heading', { name: 'Review and submit' }).waitFor();
  await page.getByText('3 selected').waitFor();
  await shot('05-wizard-review');
  await page.getByRole('button', { name: 'Submit' }).click();
  await page.getByText('3 AMIs submitted for scanning').waitFor();
  assert.strictEqual(await page.locator('td .badge', { hasText: 'Ingesting' }).count(), 3);
  await shot('06-submitted');
  // the control plane moves the scans on; the page polls and shows it
  const ids = await page.locator('td a', { hasText: 'View details' }).evaluateAll((as) => as.map((a) => a.getAttribute('href').slice(8)));
  for (const id of ids) await control(main, 'POST', 'advance', { ScanId: id });
  await page.locator('td .badge', { hasText: 'Scanning' }).nth(1).waitFor();
  for (const id of ids) await control(main, 'POST', 'advance', { ScanId: id });
  await page.locator('td .badge', { hasText: 'Issues found' }).waitFor();
  await page.getByRole('link', { name: 'View all AMIs' }).click();
  await page.getByRole('link', { name: 'All (3)' }).waitFor();
  await page.getByText('1 AMI(s) have scanning issues').waitFor();
  await page.getByText('1 AMI(s) could not be scanned').waitFor();
  await shot('07-manage-amis');
});

test('scanning issues show findings and the action to submit a new AMI', async () => {
  await page.getByRole('link', { name: `View details of ${VULNERABLE}` }).click();
  await page.getByText('Scanning issues found').waitFor();
  const findings = page.locator('table.findings tbody tr');
  assert.ok(await findings.count() >= 5);
  await page.locator('table.findings').getByText('PasswordAuthentication no').first().waitFor();
  await page.locator('table.findings').getByText('CRITICAL').first().waitFor();
  await page.getByRole('link', { name: 'Submit a new AMI' }).waitFor();
  await shot('08-findings');
});

test('a failed scan is resubmitted; when it persists, the contact path shows', async () => {
  await page.goto(`${main}/console/#/amis?status=Failed`);
  await page.getByRole('link', { name: `View details of ${PORT_2222}` }).click();
  await page.getByText('The scan could not run: ScanningPortUnreachable').waitFor();
  await page.getByRole('heading', { name: 'If the issue persists' }).waitFor();
  await page.getByRole('button', { name: 'Resubmit' }).click();
  await page.getByText('Ingesting…').waitFor();
  const id = page.url().split('#/scans/')[1];
  await control(main, 'POST', 'advance', { ScanId: id, Steps: 2 });
  await page.getByRole('heading', { name: 'The issue persists' }).waitFor();
  await page.getByText('contact AWS Marketplace Seller Operations').waitFor();
  await shot('09-failed-persists');
});

test('an ingestion issue is fixed by resubmitting with a good role', async () => {
  await page.goto(`${main}/console/#/amis/add`);
  await page.getByLabel(CLEAN).check();
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByLabel('IAM access role ARN').fill('arn:aws:iam::123456789012:role/NotCreatedYet');
  await page.getByLabel('OS user name').fill('ubuntu');
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByRole('button', { name: 'Submit' }).click();
  await page.getByText('1 AMI submitted for scanning').waitFor();
  const first = (await page.locator('td a', { hasText: 'View details' }).getAttribute('href')).slice(8);
  await control(main, 'POST', 'advance', { ScanId: first });
  await page.goto(`${main}/console/#/amis`);
  await page.getByText('1 AMI(s) could not be ingested').waitFor();
  await page.getByRole('link', { name: 'Show AMIs with ingestion issues' }).click();
  await page.getByRole('link', { name: `View details of ${CLEAN}` }).click();
  await page.getByText('Ingestion issue: AccessRoleNotFound').waitFor();
  await page.getByText('NotCreatedYet').first().waitFor();
  await page.getByLabel('New IAM access role ARN').fill('arn:aws:iam::123456789012:NotCreatedYet');
  await page.getByRole('button', { name: 'Resubmit' }).click();
  await page.getByText('Enter an IAM role ARN such as').waitFor();
  await shot('10-ingestion-issue');
  await page.getByLabel('New IAM access role ARN').fill(ROLE);
  await page.getByRole('button', { name: 'Resubmit' }).click();
  await page.getByText('Ingesting…').waitFor();
  const second = page.url().split('#/scans/')[1];
  assert.notStrictEqual(second, first);
  await control(main, 'POST', 'advance', { ScanId: second, Steps: 2 });
  await page.getByText('No issues found').waitFor();
  await page.getByText('2', { exact: true }).first().waitFor();
  await shot('11-resubmitted-succeeded');
});

test('the 26th AMI is refused in the page', async () => {
  const world = await (await fetch(`${main}/_imagebuild/world`)).json();
  const base = world.Images.find((i) => i.ImageId === CLEAN && i.Region === 'us-east-1');
  const extra = Array.from({ length: 12 }, (_, n) => ({ ...base, ImageId: `ami-0fee${String(n).padStart(13, '0')}`, Name: `Extra ${n}` }));
  await control(main, 'PATCH', 'world', { Images: extra });
  await page.goto(`${main}/console/#/amis/add`);
  await page.getByRole('heading', { name: 'Select AMIs' }).waitFor();
  const boxes = page.locator('tbody input[type=checkbox]');
  const total = await boxes.count();
  assert.ok(total >= 26, `only ${total} AMIs to choose from`);
  for (let i = 0; i < 25; i += 1) await boxes.nth(i).check();
  await page.getByText('25 of 25 AMIs selected').waitFor();
  await page.getByText('that is the most one submission can take').waitFor();
  assert.strictEqual(await boxes.nth(25).isDisabled(), true, 'a 26th AMI cannot be selected');
  await shot('12-limit-25');
  await boxes.nth(0).uncheck();
  assert.strictEqual(await boxes.nth(25).isDisabled(), false);
  await page.getByRole('link', { name: 'Cancel' }).click();
});

test('a build started from the Builds view is followed to Succeeded, with log links', async () => {
  await page.getByRole('link', { name: 'Builds' }).click();
  await page.getByRole('heading', { name: 'Builds', exact: true }).waitFor();
  await page.getByRole('button', { name: 'Start build' }).click();
  await page.getByText('Give at least one fulfillment option ID').waitFor();
  await page.getByLabel('Fulfillment option IDs').fill('fo-ids4xf7qagwyc');
  await page.getByLabel('Source AMI ID').fill('ami-0a1b2c3d4e5f60718');
  await page.getByLabel('New AMI name').fill('console build');
  await page.getByRole('button', { name: 'Start build' }).click();
  await page.getByText('Build started').waitFor();
  await page.locator('#builds-table .badge', { hasText: 'Succeeded' }).waitFor();
  await page.locator('#builds-table').getByRole('link', { name: 'stdout' }).waitFor();
  await page.locator('#builds-table').getByText('console build').waitFor();
  await page.locator('#builds-table').getByText('Example Agent 1.0.0').waitFor();
  await shot('13-builds');
  // an API error is a readable message in the page
  await page.getByLabel('Fulfillment option IDs').fill('fo-doesnotexist0');
  await page.getByRole('button', { name: 'Start build' }).click();
  await page.getByText('The build could not start').waitFor();
  await page.getByText('(InvalidFulfillmentOptionIdException)').waitFor();
});

test('works at 390 px wide without horizontal scrolling of the page', async () => {
  const narrow = await newPage(main, 390);
  await signIn(narrow);
  await narrow.getByRole('link', { name: /^All \(/ }).waitFor();
  const overflow = await narrow.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `page is ${overflow}px wider than the viewport`);
  page = narrow;
  await shot('14-manage-amis-390px');
  await narrow.context().close();
});

test('no request left the service origin and no script error happened', () => {
  assert.deepStrictEqual(offOrigin, []);
  assert.deepStrictEqual(pageErrors, []);
});
