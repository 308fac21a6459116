import { ApiError, type ApiClient } from './api';
import { h } from './dom';

const STORAGE_KEY = 'media-generation.api-key';

/**
 * The API key lives in sessionStorage: it lasts as long as the tab, is not shared with other tabs
 * and is never written into a URL.
 */
export const apiKey = {
  get(): string | null {
    try {
      return sessionStorage.getItem(STORAGE_KEY);
    } catch {
      return null;
    }
  },
  set(key: string): void {
    sessionStorage.setItem(STORAGE_KEY, key);
  },
  forget(): void {
    sessionStorage.removeItem(STORAGE_KEY);
  },
};

/** The key's public part (`mgk_<id>_…`), to show which key the tab uses without showing the secret. */
export function keyLabel(key: string): string {
  const match = /^mgk_([0-9a-f]+)_/.exec(key);
  return match ? `key_${match[1]}` : `${key.slice(0, 6)}…`;
}

/** The form that asks for a key; resolves `onAccepted` once the API has taken it. */
export function keyPrompt(api: ApiClient, onAccepted: () => void, reason?: string): HTMLElement {
  const error = h('p', { id: 'api_key-error', class: 'field-error', 'data-error-for': 'api_key', hidden: true });
  const input = h('input', {
    id: 'api_key',
    name: 'api_key',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    'aria-describedby': 'api_key-help api_key-error',
  });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Use this key');
  const form = h(
    'form',
    { class: 'key-form panel', 'aria-labelledby': 'key-heading', novalidate: true },
    h('h1', { id: 'key-heading' }, 'Enter an API key'),
    reason ? h('p', { class: 'notice', role: 'status' }, reason) : null,
    h(
      'p',
      { id: 'api_key-help' },
      'This service requires an API key. The console keeps it for this tab only and shows the jobs of that key. ',
      'Make one with ',
      h('code', {}, 'npm run apikey -- create --name NAME'),
      '.',
    ),
    h('div', { class: 'field' }, h('label', { for: 'api_key' }, 'API key'), input, error),
    h('div', { class: 'actions' }, submit),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const key = input.value.trim();
    const fail = (message: string) => {
      error.textContent = message;
      error.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    };
    if (!key) return fail('Enter an API key.');
    submit.disabled = true;
    apiKey.set(key);
    api
      .get('/api/v1/jobs?limit=1')
      .then(() => onAccepted())
      .catch((cause: unknown) => {
        apiKey.forget();
        fail(
          cause instanceof ApiError && cause.status === 401
            ? cause.detail || 'The API refused this key.'
            : `The API could not be reached: ${(cause as Error).message}`,
        );
      })
      .finally(() => (submit.disabled = false));
  });
  queueMicrotask(() => input.focus());
  return form;
}
