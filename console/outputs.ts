import type { MediaStatus } from '../common/statuses';
import { h, replaceChildren } from './dom';
import { statusLabel } from './format';

export interface OutputState {
  index: number;
  status: MediaStatus;
  url: string | null;
}

/**
 * One output's tile: its state until it is stored, then its image. Keyed by index and patched in
 * place, so an image already shown is not loaded again when a later event arrives.
 */
export class OutputTile {
  readonly element: HTMLElement;
  private shown: { status: MediaStatus; url: string | null } | undefined;

  constructor(
    private readonly index: number,
    private readonly describe: (index: number) => string,
    private readonly variant: 'thumbnail' | 'full',
  ) {
    this.element = h('div', { class: `tile tile-${variant}`, 'data-output-index': index });
  }

  update(state: OutputState): void {
    if (this.shown?.status === state.status && (this.shown.url === state.url || state.url === null)) return;
    // A presigned URL is re-signed now and then; the image already loaded stays.
    if (this.shown?.url && state.url && this.shown.status === 'COMPLETED' && state.status === 'COMPLETED') return;
    this.shown = { status: state.status, url: state.url };
    this.element.dataset.status = state.status;
    if (state.status === 'COMPLETED' && state.url) {
      replaceChildren(
        this.element,
        h('img', {
          src: state.url,
          alt: this.describe(this.index),
          loading: this.variant === 'thumbnail' ? 'lazy' : 'eager',
          decoding: 'async',
          ...(this.variant === 'thumbnail' ? { width: 256, height: 256 } : {}),
        }),
      );
    } else {
      replaceChildren(
        this.element,
        h(
          'span',
          { class: 'tile-state' },
          h('span', { class: 'visually-hidden' }, `Output ${this.index + 1}: `),
          statusLabel(state.status),
        ),
      );
    }
  }
}
