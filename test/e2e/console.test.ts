/**
 * The web console in a real browser (Debian's Chromium driven by playwright-core) against the API,
 * a worker, Temporal, Postgres and S3: submit through the form, watch the job through its event
 * stream, see the images load, cancel, page, field errors, API keys, a phone-sized screen.
 * CONSOLE_SCREENSHOTS_DIR=docs/images writes the README's screenshots.
 */
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import sharp from 'sharp';
import { createJob } from '../../db/queries/jobs';
import { collectPageErrors, launchBrowser } from '../support/browser';
import { submitJob } from '../support/jobs';
import { createTestKey } from '../support/public-api';
import { getJson, waitForJob, type TestStack } from '../support/stack';
import { useTestStack } from '../support/use-stack';
import { waitFor } from '../support/wait';
import { useWebhookReceivers, WEBHOOKS_TO_LOCAL_RECEIVERS } from '../support/webhooks';

// The functions given to page.evaluate run in the browser. This program has Node's types, not the
// DOM's: these module-local names stand for the few browser globals those functions use.
declare const document: any;
declare const window: any;
declare const sessionStorage: any;
declare const MutationObserver: any;

const SCREENSHOTS_DIR = process.env.CONSOLE_SCREENSHOTS_DIR;
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 860 };

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

/** Writes a screenshot for the README, as a palette PNG: a fraction of the size, no visible change. */
async function saveScreenshot(png: Buffer, name: string): Promise<void> {
  await sharp(png).png({ palette: true, quality: 90, effort: 10 }).toFile(path.join(SCREENSHOTS_DIR!, name));
}

/** A page in a context of its own (its own sessionStorage), closed after the test. */
const contexts: BrowserContext[] = [];
async function openPage(stack: TestStack, viewport = DESKTOP): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ baseURL: stack.baseUrl, viewport });
  contexts.push(context);
  const page = await context.newPage();
  return { page, errors: collectPageErrors(page) };
}
afterEach(async () => {
  await Promise.all(contexts.splice(0).map((context) => context.close()));
});

const card = (page: Page, jobId: string) => page.locator(`article[data-job-id="${jobId}"]`);

/**
 * The job's card in the gallery, loading more pages ("Load more") until it is there. The gallery
 * shows the newest jobs of the whole database first, and other suites add jobs meanwhile, so a
 * job finished a moment ago may already be on a later page.
 */
async function findCard(page: Page, jobId: string): Promise<ReturnType<typeof card>> {
  const target = card(page, jobId);
  const more = page.getByRole('button', { name: 'Load more' });
  await page.waitForFunction(
    () => !['', 'Loading…'].includes(document.querySelector('.gallery-state')?.textContent ?? ''),
  );
  for (let pages = 0; pages < 50 && (await target.count()) === 0; pages++) {
    const shown = await page.locator('article.job-card').count();
    if (await more.isHidden()) break;
    await more.click();
    await page.waitForFunction(
      ({ shown, jobId }) =>
        document.querySelectorAll('article.job-card').length > shown ||
        document.querySelector(`article[data-job-id="${jobId}"]`) !== null,
      { shown, jobId },
    );
  }
  await target.waitFor();
  return target;
}

/** Every <img> under `selector` has loaded real pixels; their natural widths. */
async function loadedImageWidths(page: Page, selector: string, count: number): Promise<number[]> {
  await page.waitForFunction(
    ({ selector, count }) => {
      const images = [...document.querySelectorAll(selector)];
      return images.length === count && images.every((image) => image.complete && image.naturalWidth > 0);
    },
    { selector, count },
    { timeout: 30_000 },
  );
  return page.$$eval(selector, (images) => images.map((image) => (image as any).naturalWidth));
}

/**
 * Text whose contrast with its background is under 4.5:1 (WCAG 2 AA), as the browser renders it:
 * every visible element with text of its own, against the first opaque background behind it.
 */
async function lowContrastText(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const rgb = (colour: string) => {
      const [r = 0, g = 0, b = 0, a = 1] = (/rgba?\(([^)]+)\)/.exec(colour)?.[1] ?? '0 0 0 0')
        .split(/[\s,/]+/)
        .filter(Boolean)
        .map(Number);
      return { r, g, b, a };
    };
    const luminance = ({ r, g, b }: { r: number; g: number; b: number }) => {
      const channel = (v: number) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
      return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    };
    const background = (element: any) => {
      for (let at = element; at; at = at.parentElement) {
        const colour = rgb(window.getComputedStyle(at).backgroundColor);
        if (colour.a > 0) return colour;
      }
      return { r: 255, g: 255, b: 255, a: 1 };
    };
    const low: string[] = [];
    for (const element of document.querySelectorAll('body *')) {
      const ownText = [...element.childNodes].some((node: any) => node.nodeType === 3 && node.textContent.trim());
      if (!ownText || element.closest('[hidden], .visually-hidden, :disabled') || !element.getClientRects().length)
        continue;
      const [a, b] = [luminance(rgb(window.getComputedStyle(element).color)), luminance(background(element))];
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      if (ratio < 4.5) low.push(`${element.tagName.toLowerCase()}.${element.className}: ${ratio.toFixed(2)}`);
    }
    return low;
  });
}

/** Records every data-status the element takes from now on (the page updates it in place). */
async function recordStatuses(page: Page, selector: string): Promise<() => Promise<string[]>> {
  await page.waitForSelector(selector);
  await page.evaluate((selector) => {
    const element = document.querySelector(selector);
    const seen = [element.dataset.status ?? ''];
    window.seenStatuses = seen;
    new MutationObserver(() => {
      if (seen.at(-1) !== element.dataset.status) seen.push(element.dataset.status ?? '');
    }).observe(element, { attributes: true, attributeFilter: ['data-status'] });
  }, selector);
  return () => page.evaluate(() => window.seenStatuses);
}

async function fillForm(page: Page, fields: Record<string, string>): Promise<void> {
  for (const [name, value] of Object.entries(fields)) {
    const control = page.locator(`form.submit-form [name="${name}"]`);
    if ((await control.evaluate((element) => element.tagName)) === 'SELECT') await control.selectOption(value);
    else await control.fill(value);
  }
}

/** Submits the form; the job id of the API's 202. */
async function submitThroughForm(page: Page, fields: Record<string, string>): Promise<string> {
  await fillForm(page, fields);
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/v1/generate') && r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Generate' }).click(),
  ]);
  expect(response.status()).toBe(202);
  return ((await response.json()) as { job_id: string }).job_id;
}

describe('the web console', () => {
  describe('with AUTH_MODE=off', () => {
    const stack = useTestStack({ env: WEBHOOKS_TO_LOCAL_RECEIVERS });
    const receivers = useWebhookReceivers();

    it('is served at /console (and / redirects there) with a CSP of its own origins and cache headers', async () => {
      const root = await fetch(`${stack.baseUrl}/`, { redirect: 'manual' });
      expect(root.status).toBe(302);
      expect(root.headers.get('location')).toBe('/console');

      const page = await fetch(`${stack.baseUrl}/console`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      expect(page.headers.get('cache-control')).toBe('no-cache');
      const csp = page.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("connect-src 'self'");
      expect(csp).toContain(`img-src 'self' ${new URL(stack.config.S3_ENDPOINT_URL).origin}`);
      const html = await page.text();
      const script = /src="(\/console\/assets\/main-[A-Z0-9]+\.js)"/.exec(html)?.[1];
      expect(script).toBeDefined();
      const asset = await fetch(`${stack.baseUrl}${script}`);
      expect(asset.status).toBe(200);
      expect(asset.headers.get('content-type')).toMatch(/javascript/);
      expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');

      const config = await getJson(stack.baseUrl, '/console/config.json');
      expect(config.body).toMatchObject({
        auth_mode: 'off',
        temporal_ui_job_url: 'http://127.0.0.1:8233/namespaces/default/workflows/media-job-{job_id}',
        output_formats: ['png', 'jpg', 'webp'],
        limits: { max_outputs: 10 },
      });
      expect((await fetch(`${stack.baseUrl}/console/jobs/not-a-job`)).status).toBe(200);
      expect((await fetch(`${stack.baseUrl}/console/assets/missing.js`)).status).toBe(404);
    });

    it('submits through the form: the job appears at once, follows its stream and shows its images', async () => {
      const { page, errors } = await openPage(stack);
      const streams: string[] = [];
      page.on('request', (request) => {
        if (/\/api\/v1\/jobs\/[^/]+\/events$/.test(request.url())) streams.push(request.url());
      });
      await page.goto('/console');
      const jobId = await submitThroughForm(page, {
        prompt: 'a lighthouse at dawn, oil painting',
        num_outputs: '2',
        seed: '7',
        output_format: 'webp',
      });
      const selector = `article[data-job-id="${jobId}"]`;
      const statuses = await recordStatuses(page, selector);
      await expect(card(page, jobId).getAttribute('data-status')).resolves.toMatch(/^(PENDING|PROCESSING|COMPLETED)$/);

      await page.waitForSelector(`${selector}[data-status="COMPLETED"]`, { timeout: 30_000 });
      expect(await loadedImageWidths(page, `${selector} img`, 2)).toEqual([256, 256]);
      expect((await statuses()).at(-1)).toBe('COMPLETED');
      expect(streams.some((url) => url.includes(jobId))).toBe(true);
      await expect(
        card(page, jobId)
          .locator('.tile')
          .evaluateAll((tiles) => tiles.map((t) => t.getAttribute('data-status'))),
      ).resolves.toEqual(['COMPLETED', 'COMPLETED']);
      await expect(
        card(page, jobId)
          .getByRole('button', { name: /Cancel/ })
          .isHidden(),
      ).resolves.toBe(true);

      const job = await waitForJob(stack.baseUrl, jobId);
      expect(job).toMatchObject({ status: 'COMPLETED', seed: 7, output_format: 'webp', num_outputs: 2 });
      expect(errors).toEqual([]);
    });

    it("shows a job's page: outputs full size, hashes, sizes, timings, webhook deliveries, its workflow", async () => {
      const receiver = await receivers.start();
      const jobId = await submitJob(stack, { num_outputs: 2, prompt: 'a harbour at night', webhook_url: receiver.url });
      const job = await waitForJob(stack.baseUrl, jobId);
      expect(job.status).toBe('COMPLETED');
      await receiver.waitFor(1);

      const { page, errors } = await openPage(stack);
      await page.goto('/console');
      // The card's link opens the job's page in place; the address is the job's own.
      await (await findCard(page, jobId)).getByRole('link', { name: 'a harbour at night' }).click();
      await page.waitForURL(`**/console/jobs/${jobId}`);
      const article = page.locator(`article.job-page[data-job-id="${jobId}"][data-status="COMPLETED"]`);
      await article.waitFor();
      await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('a harbour at night');

      expect(await loadedImageWidths(page, 'figure.output img', 2)).toEqual([256, 256]);
      for (const media of job.media as Array<{ index: number; sha256: string; size_bytes: number }>) {
        const figure = page.locator(`figure.output[data-output-index="${media.index}"]`);
        await expect(figure.textContent()).resolves.toContain(media.sha256);
        await expect(figure.textContent()).resolves.toContain(`${media.size_bytes.toLocaleString('en-US')} bytes`);
      }
      const timings = await page.locator('section[aria-labelledby="timing-heading"]').textContent();
      for (const label of ['Created', 'Started', 'Completed', 'Waited to start', 'Ran', 'Total']) {
        expect(timings).toContain(label);
      }
      await expect(
        page.getByRole('link', { name: 'Workflow in the Temporal Web UI' }).getAttribute('href'),
      ).resolves.toBe(`http://127.0.0.1:8233/namespaces/default/workflows/media-job-${jobId}`);
      const delivered = page.locator('.deliveries tr[data-succeeded="true"]');
      await delivered.first().waitFor({ timeout: 30_000 });
      await expect(delivered.first().textContent()).resolves.toContain('completed');
      await expect(page.locator('.deliveries').textContent()).resolves.toContain(receiver.url);

      // A reload of the job's address serves the same page.
      await page.reload();
      await article.waitFor();
      await page.goBack();
      await page.waitForURL('**/console');
      // Back in the gallery. Its first page is the newest jobs of the whole database, which other
      // suites fill meanwhile (AUTH_MODE=off shows every job), so this job may be on a later page.
      await page.locator('article[data-job-id]').first().waitFor();
      expect(errors).toEqual([]);
    });

    it("shows the API's field errors next to their fields, and creates nothing", async () => {
      const { page } = await openPage(stack);
      await page.goto('/console');
      const form = page.locator('form.submit-form');
      // Every control has a label (the accessible name a screen reader reads).
      const unlabelled = await form.evaluate((element) =>
        [...element.querySelectorAll('input, select, textarea')]
          .filter((control) => (control as any).labels?.length === 0)
          .map((control) => control.getAttribute('name')),
      );
      expect(unlabelled).toEqual([]);
      // Its controls are named as the request's fields, priority included where the API has it.
      const api = (await getJson(stack.baseUrl, '/openapi.json')).body!;
      const requestFields = Object.keys(api.components.schemas.GenerateRequest.properties);
      const names = await form.evaluate((element) =>
        [...element.querySelectorAll('[name]')].map((control) => control.getAttribute('name')),
      );
      expect(requestFields).toEqual(expect.arrayContaining(names));
      expect(names).toEqual(expect.arrayContaining(['prompt', 'model', 'num_outputs', 'seed', 'output_format']));
      expect(names.includes('priority')).toBe(requestFields.includes('priority'));
      expect(names.includes('deadline_seconds')).toBe(requestFields.includes('deadline_seconds'));
      await fillForm(page, { prompt: 'too many', num_outputs: '11' });
      const [response] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith('/api/v1/generate')),
        page.getByRole('button', { name: 'Generate' }).click(),
      ]);
      expect(response.status()).toBe(422);
      const problem = (await response.json()) as { errors: Array<{ field: string; message: string }> };
      expect(problem.errors.map((error) => error.field)).toEqual(['num_outputs']);

      const message = page.locator('[data-error-for="num_outputs"]');
      await page.locator('[data-error-for="num_outputs"]:not([hidden])').waitFor();
      await expect(message.textContent()).resolves.toBe(problem.errors[0]!.message);
      const input = page.locator('form.submit-form [name="num_outputs"]');
      await expect(input.getAttribute('aria-invalid')).resolves.toBe('true');
      await expect(input.getAttribute('aria-describedby')).resolves.toContain('num_outputs-error');
      await expect(input.evaluate((element) => element === document.activeElement)).resolves.toBe(true);
      await expect(page.locator('[data-error-for="prompt"]').isVisible()).resolves.toBe(false);

      // A blank prompt: the API's own message, under the prompt; the other field's error is gone.
      await fillForm(page, { prompt: '   ', num_outputs: '1' });
      await page.getByRole('button', { name: 'Generate' }).click();
      await page.locator('[data-error-for="prompt"]:not([hidden])').waitFor();
      await expect(page.locator('[data-error-for="prompt"]').textContent()).resolves.toBe('must not be empty');
      await expect(message.isVisible()).resolves.toBe(false);
    });

    it('works from the keyboard alone: submit, open the job, come back', async () => {
      const { page, errors } = await openPage(stack);
      await page.goto('/console');
      await page.locator('form.submit-form').waitFor();
      const focused = () =>
        page.evaluate(() => document.activeElement?.getAttribute('name') ?? document.activeElement?.textContent);
      /** Presses Tab until the focus is on `target` (a field's name or a control's text). */
      const tabTo = async (target: string) => {
        for (let presses = 0; presses < 40 && (await focused()) !== target; presses++) await page.keyboard.press('Tab');
        expect(await focused()).toBe(target);
      };
      await tabTo('prompt');
      await page.keyboard.type('typed, not clicked');
      await tabTo('Generate');
      const [response] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith('/api/v1/generate')),
        page.keyboard.press('Enter'),
      ]);
      const { job_id: jobId } = (await response.json()) as { job_id: string };
      await page.waitForSelector(`article[data-job-id="${jobId}"][data-status="COMPLETED"]`, { timeout: 30_000 });
      await tabTo('typed, not clicked');
      await page.keyboard.press('Enter');
      await page.waitForURL(`**/console/jobs/${jobId}`);
      await page.locator(`article.job-page[data-job-id="${jobId}"]`).waitFor();
      await tabTo('← All jobs');
      await page.keyboard.press('Enter');
      await page.waitForURL('**/console');
      expect(errors).toEqual([]);
    });

    it('keeps text contrast at 4.5:1 or more, in the light and the dark scheme', async () => {
      const jobId = await submitJob(stack, { num_outputs: 2, prompt: 'contrast check' });
      await waitForJob(stack.baseUrl, jobId);
      for (const colorScheme of ['light', 'dark'] as const) {
        const { page } = await openPage(stack);
        await page.emulateMedia({ colorScheme });
        await page.goto('/console');
        // The gallery with its cards (with AUTH_MODE=off every suite's jobs are listed: this one's may
        // be past the first page by now); its own page is checked below.
        await page.locator('article.job-card').first().waitFor();
        // A field error too: it is text the page shows.
        await fillForm(page, { prompt: ' ' });
        await page.getByRole('button', { name: 'Generate' }).click();
        await page.locator('[data-error-for="prompt"]:not([hidden])').waitFor();
        expect([colorScheme, await lowContrastText(page)]).toEqual([colorScheme, []]);
        await page.goto(`/console/jobs/${jobId}`);
        await page.locator('article.job-page[data-status="COMPLETED"]').waitFor();
        expect([colorScheme, await lowContrastText(page)]).toEqual([colorScheme, []]);
      }
    });
  });

  describe('a slow job', () => {
    const stack = useTestStack({ env: { FAKE_PROVIDER_LATENCY_MS: '120000' } });

    it('is cancelled from the page, and the status filter then finds it', async () => {
      const { page, errors } = await openPage(stack);
      await page.goto('/console');
      const jobId = await submitThroughForm(page, { prompt: 'a very slow render', num_outputs: '3' });
      await page.waitForSelector(`article[data-job-id="${jobId}"][data-status="PROCESSING"]`, { timeout: 30_000 });
      await card(page, jobId)
        .getByRole('button', { name: /Cancel/ })
        .click();
      await page.waitForSelector(`article[data-job-id="${jobId}"][data-status="CANCELLED"]`, { timeout: 30_000 });
      await expect(
        card(page, jobId)
          .getByRole('button', { name: /Cancel/ })
          .isHidden(),
      ).resolves.toBe(true);
      expect((await getJson(stack.baseUrl, `/api/v1/status/${jobId}`)).body).toMatchObject({ status: 'CANCELLED' });

      await page.locator('select[name="status"]').selectOption('CANCELLED');
      await page.waitForURL('**/console?status=CANCELLED');
      await findCard(page, jobId);
      const shown = await page
        .locator('article.job-card')
        .evaluateAll((cards) => cards.map((c) => c.getAttribute('data-status')));
      expect(new Set(shown)).toEqual(new Set(['CANCELLED']));
      await page.locator('select[name="status"]').selectOption('COMPLETED');
      await page.waitForSelector(`article[data-job-id="${jobId}"]`, { state: 'detached' });
      expect(errors).toEqual([]);
    });
  });

  describe('with AUTH_MODE=required', () => {
    const stack = useTestStack({ env: { AUTH_MODE: 'required' } });

    it("asks for a key, keeps it for the tab only, and shows only that key's jobs", async () => {
      const mine = await createTestKey(stack.database.db, 'console-mine');
      const theirs = await createTestKey(stack.database.db, 'console-theirs');
      const myJobs = [
        await submitJob(stack, { prompt: 'mine 1' }, mine.auth),
        await submitJob(stack, { prompt: 'mine 2' }, mine.auth),
      ];
      const theirJob = await submitJob(stack, { prompt: 'theirs' }, theirs.auth);

      const { page, errors } = await openPage(stack);
      await page.goto('/console');
      const keyInput = page.getByLabel('API key', { exact: true });
      await keyInput.waitFor();
      await expect(page.locator('article.job-card').count()).resolves.toBe(0);

      await keyInput.fill('mgk_000000000000_not-a-key');
      await page.getByRole('button', { name: 'Use this key' }).click();
      await page.locator('[data-error-for="api_key"]:not([hidden])').waitFor();
      await expect(page.locator('[data-error-for="api_key"]').textContent()).resolves.toContain('unknown or revoked');

      await keyInput.fill(mine.key);
      await page.getByRole('button', { name: 'Use this key' }).click();
      for (const jobId of myJobs) await card(page, jobId).waitFor();
      await page.waitForFunction(() => document.querySelector('.gallery-state')?.textContent?.includes('all shown'));
      await expect(page.locator('article.job-card').count()).resolves.toBe(2);
      await expect(card(page, theirJob).count()).resolves.toBe(0);
      await expect(page.locator('.key-status').textContent()).resolves.toContain(mine.id);
      // The secret is never shown, nor put in a URL.
      await expect(page.locator('body').textContent()).resolves.not.toContain(mine.key);

      // Submitting with the key: the job is the key's own.
      const submitted = await submitThroughForm(page, { prompt: 'mine 3' });
      await page.waitForSelector(`article[data-job-id="${submitted}"][data-status="COMPLETED"]`, { timeout: 30_000 });
      await loadedImageWidths(page, `article[data-job-id="${submitted}"] img`, 1);
      expect((await getJson(stack.baseUrl, `/api/v1/status/${submitted}`, mine.auth)).status).toBe(200);
      expect((await getJson(stack.baseUrl, `/api/v1/status/${submitted}`, theirs.auth)).status).toBe(404);

      // Another job's page is as unknown as a missing one.
      await page.goto(`/console/jobs/${theirJob}`);
      await page.getByRole('heading', { level: 1, name: 'Job not found' }).waitFor();

      // The tab keeps the key across reloads; another tab of the same browser asks again.
      await page.goto('/console');
      await card(page, myJobs[0]!).waitFor();
      const otherTab = await page.context().newPage();
      await otherTab.goto('/console');
      await otherTab.getByLabel('API key', { exact: true }).waitFor();
      await expect(otherTab.locator('article.job-card').count()).resolves.toBe(0);

      await page.getByRole('button', { name: 'Forget key' }).click();
      await keyInput.waitFor();
      await expect(page.evaluate(() => sessionStorage.length)).resolves.toBe(0);
      expect(errors).toEqual([]);
    });

    it('pages through 30 jobs, newest first, each once', async () => {
      const key = await createTestKey(stack.database.db, 'console-paging');
      for (let i = 1; i <= 30; i++) await submitJob(stack, { prompt: `paging job ${i}`, num_outputs: 1 }, key.auth);
      const expected = (await getJson(stack.baseUrl, '/api/v1/jobs?limit=100', key.auth)).body!.jobs.map(
        (job: { job_id: string }) => job.job_id,
      );
      expect(expected).toHaveLength(30);

      const { page, errors } = await openPage(stack, { width: 1280, height: 700 });
      const cursors: string[] = [];
      page.on('request', (request) => {
        const url = new URL(request.url());
        if (url.pathname === '/api/v1/jobs' && url.searchParams.has('cursor'))
          cursors.push(url.searchParams.get('cursor')!);
      });
      await page.goto('/console');
      await page.getByLabel('API key', { exact: true }).fill(key.key);
      await page.getByRole('button', { name: 'Use this key' }).click();
      await card(page, expected[0]).waitFor();
      // The first page only: the rest arrives as the list scrolls, or with "Load more".
      await page.waitForFunction(() => document.querySelectorAll('article.job-card').length === 12);

      for (let round = 0; round < 20; round++) {
        if ((await page.locator('article.job-card').count()) === 30) break;
        const more = page.getByRole('button', { name: 'Load more' });
        if (round % 2 === 0 && (await more.isVisible()) && (await more.isEnabled())) await more.click();
        else await page.mouse.wheel(0, 4000);
        await page.waitForTimeout(300);
      }
      await page.waitForFunction(() => document.querySelector('.gallery-state')?.textContent === '30 jobs, all shown.');
      const shown = await page
        .locator('article.job-card')
        .evaluateAll((cards) => cards.map((c) => c.getAttribute('data-job-id')));
      expect(shown).toEqual(expected);
      expect(new Set(cursors).size).toBe(2);
      await expect(page.getByRole('button', { name: 'Load more' }).isHidden()).resolves.toBe(true);
      expect(errors).toEqual([]);
    });

    it('fits a phone-sized screen (gallery and job page), and a desktop one', async () => {
      const key = await createTestKey(stack.database.db, 'console-screens');
      const requests = [
        { prompt: 'a lighthouse at dawn, oil painting', num_outputs: 4, output_format: 'webp', seed: 42 },
        { prompt: 'a fox in fresh snow, watercolour', num_outputs: 1, output_format: 'png', seed: 3 },
        { prompt: 'the harbour at night, long exposure', num_outputs: 2, output_format: 'jpg', seed: 11 },
        { prompt: 'isometric city block, soft light', num_outputs: 4, output_format: 'png', seed: 5 },
        { prompt: 'a field of poppies under a storm', num_outputs: 1, output_format: 'webp', seed: 9 },
        { prompt: 'paper-cut mountains, layered', num_outputs: 2, output_format: 'png', seed: 21 },
      ];
      const ids: string[] = [];
      for (const request of requests)
        ids.push(await submitJob(stack, { ...request, model: 'black-forest-labs/flux-schnell' }, key.auth));
      for (const id of ids) {
        await waitFor(`job ${id} completed`, async () => {
          const { body } = await getJson(stack.baseUrl, `/api/v1/status/${id}`, key.auth);
          return body?.status === 'COMPLETED';
        });
      }

      for (const viewport of [PHONE, DESKTOP]) {
        const { page, errors } = await openPage(stack, viewport);
        await page.goto('/console');
        await page.getByLabel('API key', { exact: true }).fill(key.key);
        await page.getByRole('button', { name: 'Use this key' }).click();
        await card(page, ids[0]!).waitFor();
        // Thumbnails load lazily: scrolled through, every one of them loads.
        await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
        await loadedImageWidths(page, 'article.job-card img', 14);
        await page.evaluate(() => window.scrollTo(0, 0));
        const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        expect(await overflow()).toBeLessThanOrEqual(0);
        if (SCREENSHOTS_DIR && viewport === DESKTOP) {
          await page.locator('form.submit-form [name="prompt"]').fill('a lighthouse at dawn, oil painting');
          await page.evaluate(() => document.activeElement?.blur());
          await saveScreenshot(await page.screenshot(), 'console-gallery.png');
        }

        await card(page, ids[0]!).getByRole('link').click();
        await page.locator(`article.job-page[data-job-id="${ids[0]}"]`).waitFor();
        await loadedImageWidths(page, 'figure.output img', 4);
        expect(await overflow()).toBeLessThanOrEqual(0);
        // Every output at its full size where the screen allows it, never wider than the screen.
        const widths = await page.$$eval('figure.output img', (images) =>
          images.map((image) => image.getBoundingClientRect().width),
        );
        for (const width of widths) expect(width).toBe(Math.min(256, viewport.width));
        if (SCREENSHOTS_DIR && viewport === PHONE) {
          // The top of the page: the job, its first outputs; the rest continues below the fold.
          const shot = await page.screenshot({
            fullPage: true,
            clip: { x: 0, y: 0, width: PHONE.width, height: 1500 },
          });
          await saveScreenshot(shot, 'console-job-phone.png');
        }
        expect(errors).toEqual([]);
      }
    });
  });

  describe('among jobs that never change', () => {
    const stack = useTestStack();

    it('follows a job just submitted at once, although older unfinished jobs hold every stream', async () => {
      // Rows no workflow works on: their streams stay open, as many as the page may hold.
      for (let i = 0; i < 4; i++) {
        await createJob(stack.database.db, {
          model: 'a/b',
          prompt: `stuck ${i}`,
          numOutputs: 1,
          seed: i,
          outputFormat: 'png',
        });
      }
      const { page } = await openPage(stack);
      await page.goto('/console');
      await page.locator('form.submit-form').waitFor();
      const jobId = await submitThroughForm(page, { prompt: 'submitted among stuck jobs', num_outputs: '1' });
      await page.waitForSelector(`article[data-job-id="${jobId}"][data-status="COMPLETED"]`, { timeout: 20_000 });
    });
  });
});
