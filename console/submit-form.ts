import { ApiError, type ApiClient, type FieldError } from './api';
import { announce, h } from './dom';
import { generateRequestBody, type FormValue } from './request';
import type { ConsoleConfig, GenerateReply } from './types';

type Control = HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement;

const DEFAULT_MODEL = 'black-forest-labs/flux-schnell';

function field(name: string, label: string, control: Control, hint?: string): HTMLElement {
  control.id = `field-${name}`;
  control.name = name;
  const describedBy = [hint ? `${name}-hint` : '', `${name}-error`].filter(Boolean).join(' ');
  control.setAttribute('aria-describedby', describedBy);
  return h(
    'div',
    { class: `field field-${name}` },
    h('label', { for: control.id }, label),
    control,
    hint ? h('p', { id: `${name}-hint`, class: 'hint' }, hint) : null,
    h('p', { id: `${name}-error`, class: 'field-error', 'data-error-for': name, hidden: true }),
  );
}

function select(options: string[], selected: string, blank?: string): HTMLSelectElement {
  return h(
    'select',
    {},
    blank !== undefined ? h('option', { value: '' }, blank) : null,
    ...options.map((value) => h('option', { value, selected: value === selected }, value)),
  );
}

/**
 * The submit form: one control per request field, named as the API names it. The API judges the
 * values; its 422 problem names each bad field, and the message is shown under that field.
 */
export function submitForm(
  config: ConsoleConfig,
  api: ApiClient,
  onSubmitted: (reply: GenerateReply) => void,
): HTMLFormElement {
  const { limits } = config;
  const controls: Record<string, Control> = {
    model: h('input', {
      type: 'text',
      value: DEFAULT_MODEL,
      maxlength: limits.max_model_length,
      autocomplete: 'off',
      spellcheck: 'false',
    }),
    prompt: h('textarea', { rows: 3, maxlength: limits.max_prompt_length, required: true }),
    num_outputs: h('input', { type: 'number', inputmode: 'numeric', min: 1, max: limits.max_outputs, value: 1 }),
    seed: h('input', { type: 'number', inputmode: 'numeric', min: 0, max: limits.max_seed, placeholder: 'random' }),
    output_format: select(config.output_formats, config.output_formats[0] ?? 'png'),
    deadline_seconds: h('input', {
      type: 'number',
      inputmode: 'numeric',
      min: 1,
      max: limits.max_deadline_seconds,
      placeholder: 'none',
    }),
  };
  if (config.priorities) controls.priority = select(config.priorities, '', 'default');

  const formError = h('div', { class: 'form-error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Generate');
  const form = h(
    'form',
    { class: 'submit-form panel', 'aria-labelledby': 'submit-heading', novalidate: true },
    h('h2', { id: 'submit-heading' }, 'New job'),
    field('prompt', 'Prompt', controls.prompt!),
    field('model', 'Model', controls.model!, 'owner/name or owner/name:version'),
    h(
      'div',
      { class: 'field-row' },
      field('num_outputs', 'Outputs', controls.num_outputs!, `1 to ${limits.max_outputs}`),
      field('output_format', 'Format', controls.output_format!),
    ),
    h(
      'div',
      { class: 'field-row' },
      field('seed', 'Seed', controls.seed!, 'empty: drawn at random'),
      field('deadline_seconds', 'Deadline (s)', controls.deadline_seconds!, 'optional'),
    ),
    controls.priority ? field('priority', 'Priority', controls.priority) : null,
    formError,
    h('div', { class: 'actions' }, submit),
  );

  const showErrors = (errors: FieldError[], general?: string) => {
    for (const element of form.querySelectorAll<HTMLElement>('.field-error')) {
      element.hidden = true;
      element.textContent = '';
    }
    for (const control of Object.values(controls)) control.removeAttribute('aria-invalid');
    const unplaced: FieldError[] = [];
    for (const error of errors) {
      const name = error.field.split('.')[0]!;
      const control = controls[name];
      const slot = form.querySelector<HTMLElement>(`[data-error-for="${CSS.escape(name)}"]`);
      if (!control || !slot) {
        unplaced.push(error);
        continue;
      }
      slot.textContent = slot.textContent ? `${slot.textContent}; ${error.message}` : error.message;
      slot.hidden = false;
      control.setAttribute('aria-invalid', 'true');
    }
    const lines = [general, ...unplaced.map((error) => `${error.field}: ${error.message}`)].filter(Boolean);
    formError.hidden = lines.length === 0;
    formError.textContent = lines.join(' ');
    const firstInvalid = Object.values(controls).find((control) => control.getAttribute('aria-invalid') === 'true');
    firstInvalid?.focus();
  };

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const values: Record<string, FormValue> = {};
    for (const [name, control] of Object.entries(controls)) {
      values[name] = {
        value: control.value,
        badInput: control instanceof HTMLInputElement && control.validity.badInput,
      };
    }
    const { body, errors } = generateRequestBody(values);
    if (errors.length > 0) return showErrors(errors);
    submit.disabled = true;
    submit.textContent = 'Submitting…';
    api
      .post<GenerateReply>('/api/v1/generate', body)
      .then((reply) => {
        showErrors([]);
        announce(`Job submitted: ${reply.message}`);
        onSubmitted(reply);
      })
      .catch((error: unknown) => {
        if (error instanceof ApiError) {
          showErrors(error.errors, error.errors.length > 0 ? undefined : `${error.title}: ${error.detail}`);
        } else {
          showErrors([], `The API could not be reached: ${(error as Error).message}`);
        }
      })
      .finally(() => {
        submit.disabled = false;
        submit.textContent = 'Generate';
      });
  });
  return form;
}
