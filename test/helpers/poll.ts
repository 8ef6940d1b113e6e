/** Polls `condition` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function pollUntil<T>(
  what: string,
  condition: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 10_000,
  /** What the error adds on a timeout: the state the condition last saw. */
  detail?: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${detail === undefined ? '' : ` ${detail()}`}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
