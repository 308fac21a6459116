import { ApiClient } from './api';
import { h, replaceChildren } from './dom';
import { Gallery } from './gallery';
import { JobPage } from './job-page';
import { apiKey, keyLabel, keyPrompt } from './keys';
import { LiveJobs } from './live';
import { submitForm } from './submit-form';
import type { ConsoleConfig, StatusReply } from './types';

interface View {
  dispose(): void;
}

const main = document.getElementById('main')!;
const keyStatus = document.getElementById('key-status')!;
let current: View | undefined;
let askingForKey = false;

const api = new ApiClient({
  key: () => apiKey.get(),
  onUnauthorized: () => {
    if (askingForKey || !config || config.auth_mode !== 'required') return;
    apiKey.forget();
    showKeyPrompt('The API refused the key this tab used (revoked?): enter another one.');
  },
});
const live = new LiveJobs(api);
let config: ConsoleConfig | undefined;

function showKeyPrompt(reason?: string): void {
  current?.dispose();
  current = undefined;
  askingForKey = true;
  renderKeyStatus();
  document.title = 'API key · Media generation';
  replaceChildren(
    main,
    keyPrompt(
      api,
      () => {
        askingForKey = false;
        renderKeyStatus();
        route();
      },
      reason,
    ),
  );
}

function renderKeyStatus(): void {
  const key = apiKey.get();
  if (config?.auth_mode !== 'required' || !key || askingForKey) {
    replaceChildren(keyStatus);
    return;
  }
  const forget = h('button', { type: 'button', class: 'secondary small' }, 'Forget key');
  forget.addEventListener('click', () => {
    apiKey.forget();
    showKeyPrompt();
  });
  replaceChildren(keyStatus, h('span', { class: 'key-label' }, 'Key ', h('code', {}, keyLabel(key))), forget);
}

/** /console: the form and the gallery; /console/jobs/{id}: one job. The status filter lives in the query. */
function route(moveFocus = true): void {
  if (!config) return;
  if (config.auth_mode === 'required' && !apiKey.get()) return showKeyPrompt();
  current?.dispose();
  const jobMatch = /^\/console\/jobs\/([^/]+)\/?$/.exec(location.pathname);
  if (jobMatch) {
    const page = new JobPage(decodeURIComponent(jobMatch[1]!), config, api, live);
    current = page;
    replaceChildren(main, page.element);
  } else {
    const status = new URLSearchParams(location.search).get('status') ?? '';
    const gallery = new Gallery(api, live, status, (filter) => {
      const url = filter ? `/console?status=${encodeURIComponent(filter)}` : '/console';
      history.replaceState(null, '', url);
    });
    const form = submitForm(config, api, (reply) => {
      // The job is shown at once, from what the API just recorded, and followed from there.
      api
        .get<StatusReply>(`/api/v1/status/${encodeURIComponent(reply.job_id)}`)
        .then((job) => gallery.prepend(job))
        .catch(() => undefined);
    });
    current = gallery;
    document.title = 'Media generation console';
    replaceChildren(main, h('div', { class: 'home' }, form, gallery.element));
  }
  if (moveFocus) {
    // As a page load would: the reader starts at the new view's top.
    main.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }
}

// Links marked data-nav change the view without reloading the page; the address stays a real one.
document.addEventListener('click', (event) => {
  const link = (event.target as Element | null)?.closest<HTMLAnchorElement>('a[data-nav]');
  if (!link || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  history.pushState(null, '', link.href);
  route();
});
window.addEventListener('popstate', () => route());

async function start(): Promise<void> {
  try {
    const response = await fetch('/console/config.json', { cache: 'no-store' });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    config = (await response.json()) as ConsoleConfig;
  } catch (error) {
    replaceChildren(
      main,
      h('p', { class: 'form-error', role: 'alert' }, `The console could not start: ${(error as Error).message}`),
    );
    return;
  }
  renderKeyStatus();
  route(false);
}

void start();
