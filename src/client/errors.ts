// The SDK's error: the server's stable code (invalid, forbidden, …) or one of the client's
// own (`timeout`, `unavailable` for a connection lost before the reply, `closed`).
export class ClientError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ClientError';
  }
}
