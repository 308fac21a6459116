import { isTerminalStatus } from '../common/statuses';
import { ApiError, type ApiClient } from './api';
import { h, replaceChildren } from './dom';
import { between, formatBytes, formatDuration, formatTimestamp, statusLabel } from './format';
import { requestCancel } from './job-card';
import type { LiveJobs } from './live';
import { OutputTile } from './outputs';
import type { ConsoleConfig, MediaReply, StatusReply, WebhookDelivery } from './types';

/** After the job ends, its webhooks are still being delivered: the list is read again this often, this long. */
const DELIVERY_POLL_MS = 2_000;
const DELIVERY_POLL_FOR_MS = 20_000;

function facts(rows: Array<[string, Node | string | number | null | undefined]>): HTMLElement {
  return h(
    'dl',
    { class: 'facts' },
    ...rows.flatMap(([term, value]) => [
      h('dt', {}, term),
      h('dd', {}, value === null || value === undefined || value === '' ? '—' : value),
    ]),
  );
}

function mono(text: string | null | undefined): Node | string {
  return text ? h('code', { class: 'mono' }, text) : '—';
}

export function temporalUrl(config: ConsoleConfig, jobId: string): string {
  return config.temporal_ui_job_url.replace('{job_id}', encodeURIComponent(jobId));
}

/**
 * One job in full: every output full size with its hash, size and type, the timings, errors,
 * webhook deliveries and the link to its workflow in the Temporal Web UI. Follows the job's
 * event stream and reads the status again at each change.
 */
export class JobPage {
  readonly element: HTMLElement;
  private readonly title = h('h1', { id: 'job-title' }, 'Loading…');
  private readonly badge = h('span', { class: 'badge' });
  private readonly header: HTMLElement;
  private readonly jobError = h('div', { class: 'job-error-box', role: 'note', hidden: true });
  private readonly summary = h('div', { class: 'job-summary' });
  private readonly outputs = h('div', { class: 'outputs' });
  private readonly outputFacts = new Map<number, { tile: OutputTile; facts: HTMLElement; figure: HTMLElement }>();
  private readonly deliveries = h('div', { class: 'deliveries' });
  private readonly raw = h('pre', { class: 'raw' });
  private readonly cancelButton = h('button', { type: 'button', class: 'cancel' }, 'Cancel job');
  private readonly message = h('p', { class: 'form-error', role: 'alert', hidden: true });
  private job: StatusReply | undefined;
  private stopWatching: (() => void) | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private deliveryTimer: ReturnType<typeof setInterval> | undefined;
  private disposed = false;

  constructor(
    private readonly jobId: string,
    private readonly config: ConsoleConfig,
    private readonly api: ApiClient,
    private readonly live: LiveJobs,
  ) {
    this.cancelButton.hidden = true;
    this.cancelButton.addEventListener('click', () => {
      this.cancelButton.disabled = true;
      requestCancel(this.api, this.jobId).catch((error: unknown) => {
        this.cancelButton.disabled = false;
        this.showMessage(`Cancel failed: ${(error as Error).message}`);
      });
    });
    this.header = h(
      'div',
      { class: 'job-header' },
      h('div', { class: 'job-title-row' }, this.title, this.badge),
      h('div', { class: 'actions' }, this.cancelButton),
    );
    const refreshDeliveries = h('button', { type: 'button', class: 'secondary' }, 'Refresh');
    refreshDeliveries.addEventListener('click', () => void this.loadDeliveries());
    this.element = h(
      'article',
      { class: 'job-page', 'data-job-id': jobId, 'aria-labelledby': 'job-title' },
      h('p', { class: 'back' }, h('a', { href: '/console', 'data-nav': true }, '← All jobs')),
      this.header,
      this.message,
      this.jobError,
      // The images first: they are what the job is for; its particulars follow.
      h(
        'section',
        { 'aria-labelledby': 'outputs-heading' },
        h('h2', { id: 'outputs-heading' }, 'Outputs'),
        this.outputs,
      ),
      this.summary,
      h(
        'section',
        { 'aria-labelledby': 'deliveries-heading' },
        h(
          'div',
          { class: 'section-header' },
          h('h2', { id: 'deliveries-heading' }, 'Webhook deliveries'),
          refreshDeliveries,
        ),
        this.deliveries,
      ),
      h('details', { class: 'raw-reply' }, h('summary', {}, 'Status reply (JSON)'), this.raw),
    );
    void this.load();
  }

  dispose(): void {
    this.disposed = true;
    this.stopWatching?.();
    clearTimeout(this.refreshTimer);
    clearInterval(this.deliveryTimer);
  }

  private async load(): Promise<void> {
    try {
      const job = await this.api.get<StatusReply>(`/api/v1/status/${encodeURIComponent(this.jobId)}`);
      if (this.disposed) return;
      this.render(job);
      void this.loadDeliveries();
      if (!isTerminalStatus(job.status)) {
        this.stopWatching = this.live.watch(
          this.jobId,
          {
            status: () => this.scheduleRefresh(),
            output: () => this.scheduleRefresh(),
            done: () => this.scheduleRefresh(),
          },
          { priority: true },
        );
      }
    } catch (error) {
      if (this.disposed) return;
      const notFound = error instanceof ApiError && error.status === 404;
      this.title.textContent = notFound ? 'Job not found' : 'The job could not be read';
      this.badge.hidden = true;
      this.showMessage(error instanceof ApiError ? error.detail : (error as Error).message);
    }
  }

  /** Events come in bursts (one per output): one status read answers a burst. */
  private scheduleRefresh(): void {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => {
      this.api
        .get<StatusReply>(`/api/v1/status/${encodeURIComponent(this.jobId)}`)
        .then((job) => {
          if (this.disposed) return;
          const ended = !isTerminalStatus(this.job?.status ?? 'PENDING') && isTerminalStatus(job.status);
          this.render(job);
          if (ended) this.pollDeliveries();
        })
        .catch(() => undefined);
    }, 150);
  }

  private pollDeliveries(): void {
    void this.loadDeliveries();
    const until = Date.now() + DELIVERY_POLL_FOR_MS;
    clearInterval(this.deliveryTimer);
    this.deliveryTimer = setInterval(() => {
      if (Date.now() > until) clearInterval(this.deliveryTimer);
      else void this.loadDeliveries();
    }, DELIVERY_POLL_MS);
  }

  private render(job: StatusReply): void {
    this.job = job;
    this.element.dataset.status = job.status;
    this.cancelButton.hidden = isTerminalStatus(job.status);
    if (isTerminalStatus(job.status)) this.cancelButton.disabled = false;
    document.title = `${statusLabel(job.status)}: ${job.prompt.slice(0, 60)} · Media generation`;

    this.title.textContent = job.prompt;
    this.badge.dataset.status = job.status;
    this.badge.textContent = statusLabel(job.status);

    const temporal = h(
      'a',
      {
        href: temporalUrl(this.config, job.job_id),
        target: '_blank',
        rel: 'noopener noreferrer',
        class: 'temporal-link',
      },
      'Workflow in the Temporal Web UI',
    );
    const metrics = job.metrics ?? {};
    const timing: Array<[string, string]> = [
      ['Created', formatTimestamp(job.created_at)],
      ['Started', formatTimestamp(job.started_at)],
      ['Completed', formatTimestamp(job.completed_at)],
      ['Waited to start', formatDuration(metrics.queue_ms ?? between(job.created_at, job.started_at))],
      ['Ran', formatDuration(between(job.started_at, job.completed_at))],
      ['Total', formatDuration(metrics.total_ms ?? between(job.created_at, job.completed_at))],
    ];
    if (metrics.predict_ms !== undefined) timing.push(['Generating', formatDuration(metrics.predict_ms)]);
    if (metrics.store_ms !== undefined) timing.push(['Storing', formatDuration(metrics.store_ms)]);
    const stored = metrics.bytes_stored ?? job.media.reduce((sum, media) => sum + (media.size_bytes ?? 0), 0);
    this.jobError.hidden = !job.error_message;
    replaceChildren(this.jobError, h('strong', {}, 'Error: '), job.error_message ?? '');
    replaceChildren(
      this.summary,
      h(
        'div',
        { class: 'summary-grid' },
        h(
          'section',
          { 'aria-labelledby': 'request-heading', class: 'panel' },
          h('h2', { id: 'request-heading' }, 'Request'),
          facts([
            ['Job id', mono(job.job_id)],
            ['Model', mono(job.model)],
            ['Outputs', job.num_outputs],
            ['Format', job.output_format],
            ['Seed', job.seed],
            ['Retries', job.retry_count],
            ['Workflow', temporal],
          ]),
        ),
        h(
          'section',
          { 'aria-labelledby': 'timing-heading', class: 'panel' },
          h('h2', { id: 'timing-heading' }, 'Timings'),
          facts([...timing, ['Stored', stored > 0 ? formatBytes(stored) : '—']]),
        ),
      ),
    );

    for (let index = 0; index < job.num_outputs; index++) {
      this.renderOutput(
        job,
        index,
        job.media.find((media) => media.index === index),
      );
    }
    this.raw.textContent = JSON.stringify(job, null, 2);
  }

  private renderOutput(job: StatusReply, index: number, media: MediaReply | undefined): void {
    let entry = this.outputFacts.get(index);
    if (!entry) {
      const tile = new OutputTile(index, (i) => `Output ${i + 1} of ${job.num_outputs}: ${job.prompt}`, 'full');
      const factsSlot = h('div', { class: 'output-facts' });
      const figure = h(
        'figure',
        { class: 'output', 'data-output-index': index },
        tile.element,
        h('figcaption', {}, h('h3', {}, `Output ${index + 1}`), factsSlot),
      );
      entry = { tile, facts: factsSlot, figure };
      this.outputFacts.set(index, entry);
      this.outputs.append(figure);
    }
    const status = media?.status ?? 'PENDING';
    entry.figure.dataset.status = status;
    entry.tile.update({ index, status, url: media?.presigned_media_url ?? null });
    const size =
      media?.size_bytes !== null && media?.size_bytes !== undefined
        ? `${formatBytes(media.size_bytes)} (${media.size_bytes.toLocaleString()} bytes)`
        : null;
    replaceChildren(
      entry.facts,
      facts([
        ['Status', statusLabel(status)],
        ['Type', media?.content_type],
        ['Size', size],
        ['SHA-256', mono(media?.sha256)],
        ['S3 key', mono(media?.s3_key)],
        ['Source', mono(media?.media_url)],
        ...(media?.error_message ? ([['Error', media.error_message]] as Array<[string, string]>) : []),
        ...(media?.presigned_media_url
          ? ([
              [
                'Download',
                h('a', { href: media.presigned_media_url, download: true, rel: 'noreferrer' }, 'Full-size file'),
              ],
            ] as Array<[string, Node]>)
          : []),
      ]),
    );
  }

  private async loadDeliveries(): Promise<void> {
    try {
      const { deliveries } = await this.api.get<{ deliveries: WebhookDelivery[] }>(
        `/api/v1/jobs/${encodeURIComponent(this.jobId)}/webhook-deliveries`,
      );
      if (this.disposed) return;
      if (deliveries.length === 0) {
        replaceChildren(this.deliveries, h('p', { class: 'muted' }, 'No webhook deliveries for this job.'));
        return;
      }
      const headers = ['Event', 'Attempt', 'Answer', 'URL', 'Error', 'Sent', 'Finished'];
      replaceChildren(
        this.deliveries,
        h(
          'div',
          { class: 'table-scroll', tabindex: 0, role: 'region', 'aria-label': 'Webhook deliveries' },
          h(
            'table',
            {},
            h('thead', {}, h('tr', {}, ...headers.map((header) => h('th', { scope: 'col' }, header)))),
            h(
              'tbody',
              {},
              ...deliveries.map((delivery) =>
                h(
                  'tr',
                  { 'data-delivery-id': delivery.delivery_id, 'data-succeeded': String(delivery.succeeded) },
                  h(
                    'td',
                    {},
                    delivery.output_index === null ? delivery.event : `${delivery.event} ${delivery.output_index + 1}`,
                  ),
                  h('td', {}, delivery.attempt),
                  h(
                    'td',
                    {},
                    h(
                      'span',
                      { class: 'badge', 'data-status': delivery.succeeded ? 'COMPLETED' : 'FAILED' },
                      delivery.status_code === null ? 'no answer' : String(delivery.status_code),
                    ),
                  ),
                  h('td', {}, mono(delivery.url)),
                  h('td', {}, delivery.error ?? '—'),
                  h('td', {}, formatTimestamp(delivery.created_at)),
                  h('td', {}, formatTimestamp(delivery.finished_at)),
                ),
              ),
            ),
          ),
        ),
      );
    } catch (error) {
      if (this.disposed) return;
      replaceChildren(
        this.deliveries,
        h('p', { class: 'muted' }, `The deliveries could not be read: ${(error as Error).message}`),
      );
    }
  }

  private showMessage(message: string): void {
    this.message.textContent = message;
    this.message.hidden = false;
  }
}
