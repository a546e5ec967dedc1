/**
 * What one command run opened, closed by one owner. `main` makes a Scope
 * per run and closes it when the command returns or throws (Ctrl-C
 * included: the command's signal ends its work, then this runs), so every
 * worker thread, socket, timer and file the command registered here is
 * released on every path and the process exits by itself.
 */
export interface Closable {
  close(): Promise<void> | void;
}

export class Scope {
  private readonly closers: (() => Promise<void> | void)[] = [];
  private closed = false;

  /** Registers `resource` to be closed with the scope (last registered, first closed); returns it. */
  use<T extends Closable>(resource: T): T {
    this.defer(() => resource.close());
    return resource;
  }

  /** Runs `fn` when the scope closes. */
  defer(fn: () => Promise<void> | void): void {
    if (this.closed) throw new Error('scope already closed');
    this.closers.push(fn);
  }

  /** Closes everything, in reverse order; every closer runs even when one fails, and the first failure is thrown. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    let first: { error: unknown } | undefined;
    for (const fn of this.closers.reverse()) {
      try {
        await fn();
      } catch (error) {
        first ??= { error };
      }
    }
    if (first) throw first.error;
  }
}
