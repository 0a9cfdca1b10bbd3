/** The services an admin command reads. */
export type ServiceName = 'postgres' | 'redis';

/**
 * Postgres or Redis could not be used: no connection, no session, or no answer in time. `address` is
 * the service's URL with its password redacted; `reason` is the cause as the driver gave it. A command
 * that was using both when it failed, and cannot tell which failed, names both.
 */
export class ServiceUnreachableError extends Error {
  constructor(
    readonly service: ServiceName | 'postgres or redis',
    readonly address: string,
    readonly reason: string,
  ) {
    super(`${service} unreachable at ${address} (${reason})`);
    this.name = 'ServiceUnreachableError';
  }
}
