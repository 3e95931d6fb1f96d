// Waiting for a condition that changes on events (a log line arrives, a zone is published):
// `until` checks now and again on every `poke`, and gives up after a timeout.

export class Waiters {
  private readonly pending = new Set<() => void>();

  /** Re-checks every pending wait (call it when the watched state may have changed). */
  poke(): void {
    for (const check of [...this.pending]) check();
  }

  /**
   * Resolves with the first value `probe` returns that is not undefined; rejects when `probe`
   * throws, or with `timeout()`'s error after `timeoutMs`.
   */
  until<T>(probe: () => T | undefined, timeoutMs: number, timeout: () => Error): Promise<T> {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.pending.delete(check);
      };
      const check = () => {
        let v: T | undefined;
        try {
          v = probe();
        } catch (e) {
          done();
          reject(e as Error);
          return;
        }
        if (v !== undefined) {
          done();
          resolve(v);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(timeout());
      }, timeoutMs);
      this.pending.add(check);
      check();
    });
  }
}
