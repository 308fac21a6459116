import { JOB_STATUSES } from '../common/statuses';
import { ApiError, type ApiClient } from './api';
import { h, replaceChildren } from './dom';
import { statusLabel } from './format';
import { JobCard } from './job-card';
import type { LiveJobs } from './live';
import type { JobList, StatusReply } from './types';

export const PAGE_SIZE = 12;

/**
 * The jobs, newest first, a page at a time (GET /api/v1/jobs with its cursor): more load when the
 * end of the list scrolls into view, or with the "Load more" button. Running jobs follow their streams.
 */
export class Gallery {
  readonly element: HTMLElement;
  private readonly list = h('div', { class: 'gallery-grid', 'aria-live': 'off' });
  private readonly cards = new Map<string, JobCard>();
  private readonly more: HTMLButtonElement;
  private readonly state = h('p', { class: 'gallery-state', role: 'status' });
  private readonly filter: HTMLSelectElement;
  private readonly observer: IntersectionObserver;
  private readonly sentinel = h('div', { class: 'gallery-sentinel', 'aria-hidden': 'true' });
  private cursor: string | null = null;
  private loading: AbortController | undefined;
  private exhausted = false;

  constructor(
    private readonly api: ApiClient,
    private readonly live: LiveJobs,
    private status: string,
    private readonly onFilter: (status: string) => void,
  ) {
    this.filter = h(
      'select',
      { id: 'gallery-status', name: 'status' },
      h('option', { value: '' }, 'All'),
      ...JOB_STATUSES.map((value) => h('option', { value, selected: value === status }, statusLabel(value))),
    );
    this.filter.addEventListener('change', () => {
      this.status = this.filter.value;
      this.onFilter(this.status);
      this.reload();
    });
    this.more = h('button', { type: 'button', class: 'load-more', hidden: true }, 'Load more');
    this.more.addEventListener('click', () => void this.loadPage());
    this.observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((entry) => entry.isIntersecting) && !this.exhausted && !this.loading) void this.loadPage();
      },
      { rootMargin: '400px' },
    );
    this.observer.observe(this.sentinel);
    this.element = h(
      'section',
      { class: 'gallery', 'aria-labelledby': 'gallery-heading' },
      h(
        'div',
        { class: 'gallery-header' },
        h('h2', { id: 'gallery-heading' }, 'Jobs'),
        h('div', { class: 'filter' }, h('label', { for: 'gallery-status' }, 'Status'), this.filter),
      ),
      this.list,
      this.state,
      h('div', { class: 'actions gallery-more' }, this.more),
      this.sentinel,
    );
    void this.loadPage();
  }

  /** A job just submitted goes first, at once, and is followed before the others. */
  prepend(job: StatusReply): void {
    if (this.status && this.status !== job.status) {
      this.filter.value = '';
      this.status = '';
      this.onFilter('');
      this.reload();
    }
    if (this.cards.has(job.job_id)) return;
    const card = new JobCard(job, this.api, this.live);
    this.cards.set(job.job_id, card);
    this.list.prepend(card.element);
    card.follow(true);
    this.updateState();
  }

  dispose(): void {
    this.observer.disconnect();
    this.loading?.abort();
    for (const card of this.cards.values()) card.dispose();
  }

  private reload(): void {
    this.loading?.abort();
    this.loading = undefined;
    for (const card of this.cards.values()) card.dispose();
    this.cards.clear();
    replaceChildren(this.list);
    this.cursor = null;
    this.exhausted = false;
    void this.loadPage();
  }

  private async loadPage(): Promise<void> {
    if (this.loading || this.exhausted) return;
    const controller = new AbortController();
    this.loading = controller;
    this.more.disabled = true;
    this.state.textContent = 'Loading…';
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (this.status) query.set('status', this.status);
    if (this.cursor) query.set('cursor', this.cursor);
    try {
      const page = await this.api.get<JobList>(`/api/v1/jobs?${query.toString()}`, controller.signal);
      if (controller.signal.aborted) return;
      for (const job of page.jobs) {
        if (this.cards.has(job.job_id)) continue;
        const card = new JobCard(job, this.api, this.live);
        this.cards.set(job.job_id, card);
        this.list.append(card.element);
        card.follow();
      }
      this.cursor = page.next_cursor;
      this.exhausted = page.next_cursor === null;
      this.loading = undefined;
      this.updateState();
      // Observing again reports whether the end is still in view: a page that does not fill the
      // screen brings the next one.
      this.observer.unobserve(this.sentinel);
      if (!this.exhausted) this.observer.observe(this.sentinel);
    } catch (error) {
      if (controller.signal.aborted) return;
      this.loading = undefined;
      this.more.hidden = false;
      this.more.disabled = false;
      this.state.textContent =
        error instanceof ApiError ? `${error.title}: ${error.detail}` : `The API could not be reached.`;
    }
  }

  private updateState(): void {
    this.more.hidden = this.exhausted;
    this.more.disabled = false;
    const count = this.cards.size;
    this.state.textContent =
      count === 0
        ? this.status
          ? `No ${statusLabel(this.status as StatusReply['status']).toLowerCase()} jobs.`
          : 'No jobs yet: submit one.'
        : this.exhausted
          ? `${count} job${count === 1 ? '' : 's'}, all shown.`
          : `${count} jobs shown; more below.`;
  }
}
