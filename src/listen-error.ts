// A socket that cannot listen (or a UDP path that cannot be had: udp.batch on without its
// addon), said so that an operator can act on it: which listener, which address, why in words,
// and the configuration field that sets it.

export class ListenError extends Error {
  constructor(
    message: string,
    /** The configuration field that sets this address ("listen", "ops.listen"). */
    readonly field: string,
    /** The system error code (EADDRINUSE, EACCES, ...). */
    readonly code: string | undefined,
    options: { cause: unknown },
  ) {
    super(message, options);
    this.name = 'ListenError';
  }
}

export function listenError(what: string, field: string, address: string, e: unknown): ListenError {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const why =
    code === 'EADDRINUSE'
      ? 'the address is already in use (by another fedns, or another program?)'
      : code === 'EACCES'
        ? 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)'
        : code === 'EADDRNOTAVAIL'
          ? 'no network interface has this address'
          : e instanceof Error
            ? e.message
            : String(e);
  return new ListenError(`cannot listen for ${what} on ${address}: ${why}`, field, code, { cause: e });
}
