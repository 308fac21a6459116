/** The error a promise rejects with, for assertions on its fields; a promise that resolves fails the test. */
export async function failure(promise: Promise<unknown>): Promise<Record<string, any>> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!error) throw new Error('expected a failure, got success');
  return error as Record<string, any>;
}
