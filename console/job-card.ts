import { isTerminalStatus, type JobStatus } from '../common/statuses';
import { ApiError, type ApiClient } from './api';
import { announce, h, replaceChildren } from './dom';
import { formatAge, formatTimestamp, statusLabel } from './format';
import type { LiveJobs } from './live';
import { OutputTile } from './outputs';
import type { StatusReply } from './types';

/** The square grid a card's tiles fill: 1, 2 side by side, 2×2, 3×3 or 4×4 cells. */
function gridSize(outputs: number): number {
  return outputs <= 2 ? outputs : outputs <= 4 ? 4 : outputs <= 9 ? 9 : 16;
}

export function jobPath(jobId: string): string {
  return `/console/jobs/${encodeURIComponent(jobId)}`;
}

/** Asks the API to cancel; the job's own stream then reports CANCELLED. */
export async function requestCancel(api: ApiClient, jobId: string): Promise<void> {
  try {
    await api.post(`/api/v1/jobs/${encodeURIComponent(jobId)}/cancel`, { reason: 'Cancelled from the console' });
    announce('Cancellation requested.');
  } catch (error) {
    // 409: it ended in the meantime, which its stream reports too.
    if (!(error instanceof ApiError && error.status === 409)) throw error;
  }
}

/** A job in the gallery: an element with data-job-id and data-status, kept current by the job's event stream. */
export class JobCard {
  readonly element: HTMLElement;
  private readonly badge = h('span', { class: 'badge' });
  private readonly tiles = h('div', { class: 'tiles' });
  private readonly tileByIndex = new Map<number, OutputTile>();
  private readonly cancelButton: HTMLButtonElement;
  private readonly errorLine = h('p', { class: 'job-error', hidden: true });
  private stopWatching: (() => void) | undefined;
  private job: StatusReply;

  constructor(
    job: StatusReply,
    private readonly api: ApiClient,
    private readonly live: LiveJobs,
  ) {
    this.job = job;
    this.cancelButton = h('button', { type: 'button', class: 'cancel' }, 'Cancel');
    this.cancelButton.setAttribute('aria-label', `Cancel job: ${job.prompt.slice(0, 80)}`);
    this.cancelButton.addEventListener('click', () => {
      this.cancelButton.disabled = true;
      requestCancel(this.api, this.job.job_id).catch((error: unknown) => {
        this.cancelButton.disabled = false;
        this.showError(`Cancel failed: ${(error as Error).message}`);
      });
    });
    const created = h('time', { datetime: job.created_at ?? '', title: formatTimestamp(job.created_at) });
    created.textContent = formatAge(job.created_at);
    this.element = h(
      'article',
      { class: 'job-card', 'data-job-id': job.job_id, 'aria-labelledby': `job-${job.job_id}-title` },
      this.tiles,
      h(
        'div',
        { class: 'job-card-body' },
        h(
          'h3',
          { class: 'job-card-title', id: `job-${job.job_id}-title` },
          h('a', { href: jobPath(job.job_id), 'data-nav': true }, job.prompt),
        ),
        h(
          'p',
          { class: 'job-card-meta' },
          this.badge,
          h('span', {}, `${job.num_outputs} × ${job.output_format}`),
          created,
        ),
        this.errorLine,
        h('div', { class: 'job-card-actions' }, this.cancelButton),
      ),
    );
    this.render(job);
  }

  /** Shows a full status reply (the list's, or a fresh one once the job ended). */
  render(job: StatusReply): void {
    this.job = job;
    this.setStatus(job.status);
    this.tiles.className = `tiles tiles-${gridSize(job.num_outputs)}`;
    for (let index = 0; index < job.num_outputs; index++) {
      const media = job.media.find((item) => item.index === index);
      this.tile(index).update({
        index,
        status: media?.status ?? 'PENDING',
        url: media?.presigned_media_url ?? null,
      });
    }
    if (job.error_message) this.showError(job.error_message);
  }

  /** Follows the job's event stream while it runs; `priority` for a job just submitted. */
  follow(priority = false): void {
    if (isTerminalStatus(this.job.status) || this.stopWatching) return;
    this.stopWatching = this.live.watch(
      this.job.job_id,
      {
        status: (event) => {
          this.setStatus(event.status);
          if (event.error_message) this.showError(event.error_message);
        },
        output: (event) =>
          this.tile(event.index).update({
            index: event.index,
            status: event.status,
            url: event.presigned_media_url ?? null,
          }),
        done: () => {
          this.stopWatching = undefined;
          // The full reply: sizes, and a URL for every stored output even if an event was missed.
          this.api
            .get<StatusReply>(`/api/v1/status/${encodeURIComponent(this.job.job_id)}`)
            .then((job) => this.render(job))
            .catch(() => undefined);
        },
      },
      { priority },
    );
  }

  dispose(): void {
    this.stopWatching?.();
    this.stopWatching = undefined;
  }

  private tile(index: number): OutputTile {
    let tile = this.tileByIndex.get(index);
    if (!tile) {
      tile = new OutputTile(
        index,
        (i) => `Output ${i + 1} of ${this.job.num_outputs}: ${this.job.prompt}`,
        'thumbnail',
      );
      this.tileByIndex.set(index, tile);
      const after = [...this.tileByIndex.keys()].filter((other) => other > index).sort((a, b) => a - b)[0];
      this.tiles.insertBefore(tile.element, after === undefined ? null : this.tileByIndex.get(after)!.element);
    }
    return tile;
  }

  private setStatus(status: JobStatus): void {
    if (this.element.dataset.status !== status && this.element.dataset.status && isTerminalStatus(status)) {
      announce(`Job "${this.job.prompt.slice(0, 60)}" ${statusLabel(status).toLowerCase()}.`);
    }
    this.job = { ...this.job, status };
    this.element.dataset.status = status;
    this.badge.dataset.status = status;
    replaceChildren(this.badge, statusLabel(status));
    this.cancelButton.hidden = isTerminalStatus(status);
  }

  private showError(message: string): void {
    this.errorLine.textContent = message;
    this.errorLine.hidden = false;
  }
}
