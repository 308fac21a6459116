export interface FieldError {
  field: string;
  message: string;
}

/** An answer other than 2xx, read from its problem+json body (RFC 9457) when it has one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly errors: FieldError[] = [],
  ) {
    super(detail || title);
    this.name = 'ApiError';
  }
}

export async function problemOf(response: Response): Promise<ApiError> {
  let body: { title?: unknown; detail?: unknown; errors?: unknown } = {};
  try {
    body = (await response.json()) as typeof body;
  } catch {
    // Not JSON (a proxy's error page): the status line is all there is.
  }
  const errors = Array.isArray(body.errors)
    ? body.errors.filter(
        (error): error is FieldError => typeof error?.field === 'string' && typeof error?.message === 'string',
      )
    : [];
  return new ApiError(
    response.status,
    typeof body.title === 'string' ? body.title : response.statusText || `HTTP ${response.status}`,
    typeof body.detail === 'string' ? body.detail : '',
    errors,
  );
}

export interface ApiClientOptions {
  /** The API key to send, when there is one. */
  key: () => string | null;
  /** Called on a 401: the key was refused (revoked, or never valid). */
  onUnauthorized?: () => void;
  fetch?: typeof fetch;
}

/** The API, as the page calls it: JSON in and out, the key as `Authorization: Bearer`, errors as ApiError. */
export class ApiClient {
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: ApiClientOptions) {
    this.fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    const key = this.options.key();
    return { accept: 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}), ...extra };
  }

  /** A raw request with the key; for the event stream, whose body is read as it arrives. */
  async request(path: string, init: RequestInit = {}): Promise<Response> {
    const response = await this.fetchImpl(path, {
      ...init,
      headers: { ...this.headers(), ...((init.headers as Record<string, string> | undefined) ?? {}) },
    });
    if (response.status === 401) this.options.onUnauthorized?.();
    return response;
  }

  async json<T>(path: string, init: RequestInit = {}): Promise<T> {
    const response = await this.request(path, init);
    if (!response.ok) throw await problemOf(response);
    return (await response.json()) as T;
  }

  get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return this.json<T>(path, { signal });
  }

  post<T>(path: string, body: unknown = {}): Promise<T> {
    return this.json<T>(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  }
}
