import type { FieldError } from './api';

/** The request fields the form holds, by the API's names; the numbers are sent as JSON numbers. */
export const NUMBER_FIELDS = ['num_outputs', 'seed', 'deadline_seconds'] as const;
export const TEXT_FIELDS = ['model', 'prompt', 'output_format', 'priority'] as const;
/** Sent only when filled in: the API has its own default (or draws a seed) otherwise. */
const OPTIONAL_FIELDS = new Set(['num_outputs', 'seed', 'deadline_seconds', 'priority', 'output_format']);

export interface FormValue {
  value: string;
  /** The browser could not read the input as a number (type="number" with text in it). */
  badInput?: boolean;
}

/**
 * The JSON body of POST /api/v1/generate from the form's values. The API judges the values (its
 * 422 names each bad field); only what cannot be sent as JSON at all is refused here.
 */
export function generateRequestBody(values: Record<string, FormValue | undefined>): {
  body: Record<string, string | number>;
  errors: FieldError[];
} {
  const body: Record<string, string | number> = {};
  const errors: FieldError[] = [];
  for (const field of [...TEXT_FIELDS, ...NUMBER_FIELDS]) {
    const input = values[field];
    if (!input) continue;
    const value = input.value.trim();
    if (input.badInput) {
      errors.push({ field, message: 'must be a number' });
      continue;
    }
    if (value === '' && OPTIONAL_FIELDS.has(field)) continue;
    if ((NUMBER_FIELDS as readonly string[]).includes(field)) {
      const number = Number(value);
      if (!Number.isFinite(number)) errors.push({ field, message: 'must be a number' });
      else body[field] = number;
    } else {
      // The prompt keeps its own spaces: the API stores it as sent.
      body[field] = field === 'prompt' ? input.value : value;
    }
  }
  return { body, errors };
}
