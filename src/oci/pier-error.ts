/**
 * The base of every Pier error: a message for people and a stable `code`
 * (`ERR_*`) for programs, like undici's errors. The codes are listed, with
 * their class and meaning, in docs/errors.md; test/errors.test.ts keeps the
 * list and the code in step. The registry's src/registry/http-errors.ts
 * maps the server-side ones to OCI errors; the CLI prints the message.
 *
 * In oci, which imports nothing, so every module (the client too) may use it.
 */
export abstract class PierError extends Error {
  abstract readonly code: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}
